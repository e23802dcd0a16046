// npm run example:streaming [-- --walkthrough]
import { runExampleMain } from '../shared/main.ts';
import { streaming } from './system.ts';
import { walkthrough } from './walkthrough.ts';

await runExampleMain(streaming, walkthrough);
