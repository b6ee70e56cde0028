/** The app shell: features composed at the top level; features do not import each other. */
import { EngineStatusPanel } from './features/engine-status/engine-status-panel';

export function App() {
  return (
    <div className="app">
      <header className="app-header">
        <h1>Spindle</h1>
        <p className="tagline">Storage you can trust</p>
      </header>
      <main className="app-main">
        <EngineStatusPanel />
      </main>
    </div>
  );
}
