/**
 * The backend a test run checks: the one `initBackend` picks (env TDR_BACKEND, else the default order
 * of lib/backend/index.ts). The pure-JS cpu backend is the oracle it is compared with.
 */
import { initBackend } from '../../lib/backend';

export async function backendUnderTest(): Promise<string> {
  return (await initBackend({ quiet: true })).name;
}
