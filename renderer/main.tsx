import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './app';
import { EngineProvider } from './platform/engine-context';
import { platformApi } from './platform/spindle-api';
import { useAppStore } from './store/app-store';
import { startEngineSync } from './store/engine-sync';
import './styles.css';

const engine = startEngineSync(platformApi(), useAppStore);

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <EngineProvider engine={engine}>
      <App />
    </EngineProvider>
  </StrictMode>,
);
