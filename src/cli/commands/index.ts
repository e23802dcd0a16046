// Every CLI command, in the order `gatehouse --help` lists them.
// Each domain's commands live in their own file next to this one.
import type { Command } from '../command.ts';
import { serverCommands } from './server.ts';
import { clientCommands } from './clients.ts';
import { resourceCommands } from './resources.ts';
import { roleCommands } from './roles.ts';
import { userCommands } from './users.ts';
import { keyCommands } from './keys.ts';
import { idpCommands } from './idps.ts';
import { auditCommands } from './audit.ts';
import { applyCommands } from './apply.ts';
import { accessCommands } from './access.ts';

export const commands: Command[] = [
  ...serverCommands,
  ...clientCommands,
  ...resourceCommands,
  ...roleCommands,
  ...userCommands,
  ...idpCommands,
  ...keyCommands,
  ...auditCommands,
  ...applyCommands,
  ...accessCommands,
];
