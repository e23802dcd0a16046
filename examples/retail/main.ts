// npm run example:retail [-- --walkthrough]
import { runExampleMain } from '../shared/main.ts';
import { retail } from './system.ts';
import { walkthrough } from './walkthrough.ts';

await runExampleMain(retail, walkthrough);
