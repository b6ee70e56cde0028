/**
 * Electron main: one window onto the engine host. Thin on purpose: the engine
 * runs in its own process (an Electron utility process when this app starts
 * it), and this file only creates the window, starts or finds the engine host,
 * and wires IPC.
 */
import { app, BrowserWindow, session, shell, utilityProcess } from 'electron';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CONTENT_SECURITY_POLICY } from '../service/browser-mode.js';
import { ControlClient } from '../service/control-client.js';
import { packageInfo } from '../service/package-info.js';
import { openDemoOnFirstStart } from '../service/first-start.js';
import { controlSocketPath } from '../service/runtime-paths.js';
import { wireIpc } from './ipc.js';

const root = packageInfo().root;
const rendererIndex = join(root, 'dist', 'renderer', 'index.html');
const preloadScript = join(root, 'dist', 'preload', 'preload.cjs');
const daemonEntry = join(root, 'dist', 'main', 'service', 'cli-main.js');

async function engineHostClient(): Promise<ControlClient> {
  try {
    return await ControlClient.connect(controlSocketPath());
  } catch {
    // None runs yet: start one as a utility process, so heavy I/O never
    // stalls this process or the window.
    utilityProcess.fork(daemonEntry, ['daemon'], { serviceName: 'Spindle engine host', stdio: 'inherit' });
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        return await ControlClient.connect(controlSocketPath());
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }
}

async function createWindow(): Promise<void> {
  const client = await engineHostClient();
  await openDemoOnFirstStart(client, (line) => console.error(`spindle: ${line}`));
  const window = new BrowserWindow({
    width: 1280,
    height: 800,
    title: 'Spindle',
    show: false,
    webPreferences: {
      preload: preloadScript,
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  const pageUrl = pathToFileURL(rendererIndex).href;
  const unwire = wireIpc(window, client, pageUrl);
  window.on('closed', () => {
    unwire();
    client.close();
  });
  // The page never navigates and never opens windows; links go to the browser.
  window.webContents.on('will-navigate', (event) => event.preventDefault());
  window.webContents.setWindowOpenHandler(({ url }) => {
    if (url.startsWith('https:')) void shell.openExternal(url);
    return { action: 'deny' };
  });
  window.once('ready-to-show', () => window.show());
  await window.loadURL(pageUrl);
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => {
    const [window] = BrowserWindow.getAllWindows();
    if (window) {
      if (window.isMinimized()) window.restore();
      window.focus();
    }
  });
  app.on('web-contents-created', (_event, contents) => {
    contents.on('will-attach-webview', (event) => event.preventDefault());
  });
  void app.whenReady().then(async () => {
    session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
      callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] } });
    });
    session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
    await createWindow();
    app.on('activate', () => {
      if (BrowserWindow.getAllWindows().length === 0) void createWindow();
    });
  });
  // The engine host outlives the window: volumes stay exported. On Linux and
  // Windows closing the last window ends the app, not the engine host.
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
}
