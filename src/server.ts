import type { Config } from './config/config.ts';
export async function serve(_config: Config): Promise<number> {
  throw new Error('not yet');
}
