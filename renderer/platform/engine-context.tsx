/** Gives components the engine (requests and refreshes) without importing the module that started it. */
import { createContext, useContext, type ReactNode } from 'react';
import type { EngineSync } from '../store/engine-sync';

const EngineContext = createContext<EngineSync | undefined>(undefined);

export function EngineProvider({ engine, children }: { engine: EngineSync; children: ReactNode }) {
  return <EngineContext.Provider value={engine}>{children}</EngineContext.Provider>;
}

export function useEngine(): EngineSync {
  const engine = useContext(EngineContext);
  if (!engine) throw new Error('useEngine outside EngineProvider');
  return engine;
}
