import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './app';
import { platformApi } from './platform/spindle-api';
import { useAppStore } from './store/app-store';
import { startEngineSync } from './store/engine-sync';
import './styles.css';

startEngineSync(platformApi(), useAppStore);

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
