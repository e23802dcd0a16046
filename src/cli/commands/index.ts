// Every CLI command, in the order `gatehouse --help` lists them.
// Each domain's commands live in their own file next to this one.
import type { Command } from '../command.ts';
import { serverCommands } from './server.ts';

export const commands: Command[] = [
  ...serverCommands,
];
