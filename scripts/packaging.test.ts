/**
 * The packaging configuration, checked without building (the Electron binary
 * that electron-builder packs cannot be downloaded here): electron-builder's
 * own schema accepts electron-builder.yml, every file it ships exists or is
 * produced by the build, the polkit policy is valid against polkit's DTD and
 * names the launcher the package installs, the desktop entry passes
 * desktop-file-validate and matches the config, and `npm run package` skips
 * in one line when it cannot build.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getConfig, validateConfiguration } from 'app-builder-lib/out/util/config/config.js';
import type { Configuration } from 'app-builder-lib';
import { beforeAll, describe, expect, it } from 'vitest';
import { findElectronBinary } from './electron-binary.mjs';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const POLICY = join(root, 'packaging/linux/dev.spindle.app.disk-helper.policy');
const DESKTOP = join(root, 'packaging/linux/spindle.desktop');
const LAUNCHER = join(root, 'packaging/linux/spindle-disk-helper');
const POLKIT_DTD = '/usr/share/polkit-1/policyconfig-1.dtd';

let config: Configuration;
type Resource = { from: string; to: string; filter?: string[] };
let resources: Resource[];

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

/** The directory a TypeScript project compiles into, from its tsconfig. */
function outDir(project: string): string {
  const tsconfig = JSON.parse(readFileSync(join(root, project, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string } };
  return join(project, tsconfig.compilerOptions.outDir).replace(/\\/g, '/');
}

function pngSize(file: string): [number, number] {
  const png = readFileSync(file);
  expect(png.subarray(0, 8).equals(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10])), `${file} is a PNG`).toBe(true);
  return [png.readUInt32BE(16), png.readUInt32BE(20)];
}

function desktopEntry(text: string): Record<string, string> {
  const entry: Record<string, string> = {};
  let section = '';
  for (const line of text.split('\n')) {
    const header = /^\[(.+)\]$/.exec(line);
    if (header) section = header[1]!;
    else if (section === 'Desktop Entry' && line.includes('=')) entry[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
  }
  return entry;
}

beforeAll(async () => {
  config = await getConfig(root, 'electron-builder.yml', null);
  resources = (config.extraResources ?? []) as Resource[];
});

describe('electron-builder.yml', () => {
  it('passes electron-builder\'s own schema, and a wrong key would not', async () => {
    const quiet = { isEnabled: false, add: () => {} } as unknown as Parameters<typeof validateConfiguration>[1];
    await validateConfiguration(config, quiet);
    await expect(validateConfiguration({ ...config, linux: { ...config.linux, notAnOption: true } as never }, quiet)).rejects.toThrow(/does not match the API schema/);
  });

  it('builds AppImage and deb for Linux with the app\'s metadata', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, string>;
    expect(config.linux?.target).toEqual(['AppImage', 'deb']);
    expect(config.linux?.category).toBe('System');
    for (const field of ['homepage', 'author', 'license', 'description']) expect(pkg[field], field).toMatch(/\S/);
    expect(pkg.scripts).toHaveProperty('package');
  });

  it('ships the app\'s entry point and the built layers', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { main: string };
    // getConfig normalises the list into one { filter } set.
    const files = (config.files as Array<string | { filter: string[] }>).flatMap((f) => (typeof f === 'string' ? [f] : f.filter));
    expect(pkg.main).toBe(`${outDir('main/electron')}/main.js`);
    for (const layer of ['main/electron', 'main/service', 'main/engine', 'main/nbd', 'preload']) {
      const out = outDir(layer);
      expect(files.some((f) => out.startsWith(f.replace(/\/\*\*$/, ''))), `${out} is packed`).toBe(true);
    }
    expect(files).toContain('dist/renderer/**');
    expect(files).toContain('!dist/**/*.test.*');
  });

  it('ships the disk helper outside the archive: launcher, its code, the NBD layer and valibot', () => {
    const to = (from: string) => resources.find((r) => r.from === from)?.to;
    expect(to('packaging/linux/spindle-disk-helper')).toBe('helper/spindle-disk-helper');
    expect(to('packaging/linux/helper-package.json')).toBe('helper/app/package.json');
    expect(to(outDir('native-helpers'))).toBe('helper/app/dist/native-helpers');
    expect(to(outDir('main/nbd'))).toBe('helper/app/dist/main/nbd');
    expect(to('node_modules/valibot')).toBe('helper/app/node_modules/valibot');
    for (const r of resources.filter((x) => !x.from.startsWith('dist/'))) expect(existsSync(join(root, r.from)), r.from).toBe(true);
    expect(existsSync(join(root, 'native-helpers/helper-main.ts'))).toBe(true);
    expect(JSON.parse(readFileSync(join(root, 'packaging/linux/helper-package.json'), 'utf8'))).toMatchObject({ type: 'module' });
  });

  it('has the icon sizes Linux desktops use', () => {
    const dir = join(root, config.linux!.icon!);
    for (const size of [256, 512]) expect(pngSize(join(dir, `${size}x${size}.png`))).toEqual([size, size]);
  });

  it('installs the polkit policy where polkit reads actions', () => {
    const fpm = (config.deb?.fpm ?? []) as string[];
    const mapping = fpm.find((a) => a.includes('/usr/share/polkit-1/actions/'));
    expect(mapping).toBe('packaging/linux/dev.spindle.app.disk-helper.policy=/usr/share/polkit-1/actions/dev.spindle.app.disk-helper.policy');
    expect(existsSync(join(root, mapping!.split('=')[0]!))).toBe(true);
    expect(config.deb?.depends).toEqual(expect.arrayContaining(['pkexec', 'polkitd', 'smartmontools', 'util-linux', 'libgtk-3-0']));
  });
});

describe('the disk helper launcher and its polkit policy', () => {
  const installed = () => `/opt/${config.productName}/resources/${resources.find((r) => r.from === 'packaging/linux/spindle-disk-helper')!.to}`;

  it('the launcher is an executable sh script that runs the packaged helper with the app\'s Electron as Node', () => {
    expect(statSync(LAUNCHER).mode & 0o755).toBe(0o755);
    expect(spawnSync('sh', ['-n', LAUNCHER]).status).toBe(0);
    const text = readFileSync(LAUNCHER, 'utf8');
    expect(text).toContain(`ELECTRON_RUN_AS_NODE=1 exec /opt/${config.productName}/${config.linux!.executableName} /opt/${config.productName}/resources/helper/app/dist/native-helpers/helper-main.js`);
  });

  it('the policy is valid against polkit\'s DTD', (ctx) => {
    if (!has('xmllint')) return ctx.skip('xmllint is not installed (Debian package libxml2-utils)');
    if (!existsSync(POLKIT_DTD)) return ctx.skip(`${POLKIT_DTD} is missing (Debian package polkitd)`);
    const r = spawnSync('xmllint', ['--noout', '--dtdvalid', POLKIT_DTD, POLICY], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('grants the helper to administrators with auth_admin_keep, for exactly the installed launcher, which the client starts', () => {
    const xml = readFileSync(POLICY, 'utf8');
    expect(xml).toMatch(/<action id="dev\.spindle\.app\.disk-helper">/);
    expect(xml).toMatch(/<allow_active>auth_admin_keep<\/allow_active>/);
    expect(xml).toMatch(/<allow_any>auth_admin<\/allow_any>/);
    const exec = /<annotate key="org\.freedesktop\.policykit\.exec\.path">([^<]+)<\/annotate>/.exec(xml)?.[1];
    expect(exec).toBe(installed());
    const client = readFileSync(join(root, 'main/service/disk-helper-client.ts'), 'utf8');
    expect(client).toContain(`export const INSTALLED_HELPER = '${installed()}';`);
  });
});

describe('the desktop entry', () => {
  it('passes desktop-file-validate', (ctx) => {
    if (!has('desktop-file-validate')) return ctx.skip('desktop-file-validate is not installed (Debian package desktop-file-utils)');
    const r = spawnSync('desktop-file-validate', [DESKTOP], { encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });

  it('matches what electron-builder writes into the package, and runs the app\'s executable with its icon', () => {
    const entry = desktopEntry(readFileSync(DESKTOP, 'utf8'));
    expect(config.linux?.desktop?.entry).toEqual(
      Object.fromEntries(Object.entries(entry).filter(([key]) => !['Type', 'Exec', 'Icon'].includes(key))),
    );
    expect(entry.Exec?.split(' ')[0]).toBe(config.linux?.executableName);
    expect(entry.Icon).toBe(config.linux?.executableName);
  });
});

describe('npm run package', () => {
  it('says in one line why it skips when the Electron binary is missing, and exits 0', (ctx) => {
    const electron = findElectronBinary();
    if ('path' in electron) return ctx.skip(`an Electron binary exists (${electron.path}); packing is not run inside tests`);
    const r = spawnSync(process.execPath, [join(root, 'scripts/package.mjs')], { cwd: root, encoding: 'utf8' });
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^package: skipped: .*Electron binary/);
  });
});
