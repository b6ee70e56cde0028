/**
 * The layering of shared/DESIGN.md ("Folders and the direction of
 * dependencies"), enforced on every `npm test`. Each layer names what it may
 * import of ours; everything else is forbidden.
 */
const layer = (name, from, allowed) => ({
  name,
  comment: `${from} may import only: ${allowed.join(', ')}`,
  severity: 'error',
  from: { path: `^${from}/` },
  to: { path: '^(main|preload|renderer|native-helpers|e2e|bench|scripts)/', pathNot: allowed.map((a) => `^${a}`) },
});

module.exports = {
  forbidden: [
    layer('nbd-is-the-bottom', 'main/nbd', ['main/nbd/']),
    layer('engine-sees-only-nbd', 'main/engine', ['main/engine/', 'main/nbd/']),
    layer('service-over-engine', 'main/service', ['main/service/', 'main/engine/', 'main/nbd/', 'preload/api\\.ts$']),
    layer('electron-over-service', 'main/electron', ['main/electron/', 'main/service/', 'preload/api\\.ts$']),
    layer('preload-is-the-contract', 'preload', ['preload/']),
    layer('renderer-sees-only-the-contract', 'renderer', ['renderer/', 'preload/api\\.ts$']),
    layer('helper-sees-only-nbd', 'native-helpers', ['native-helpers/', 'main/nbd/']),
    {
      name: 'electron-only-in-main-electron',
      comment: 'only main/electron and the preload script may import electron',
      severity: 'error',
      from: { pathNot: '^(main/electron|preload|e2e)/' },
      to: { path: '(^|/)node_modules/electron/' },
    },
    {
      name: 'no-ui-below-the-renderer',
      comment: 'main/ and native-helpers/ never import React or zustand',
      severity: 'error',
      from: { path: '^(main|native-helpers)/' },
      to: { path: '(^|/)node_modules/(react|react-dom|zustand)/' },
    },
    {
      name: 'renderer-has-no-node',
      comment: 'the renderer is sandboxed: no Node built-ins',
      severity: 'error',
      from: { path: '^renderer/' },
      to: { dependencyTypes: ['core'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)dist/' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      extensions: ['.ts', '.tsx', '.cts', '.mts', '.js', '.mjs', '.cjs', '.d.ts'],
    },
  },
};
