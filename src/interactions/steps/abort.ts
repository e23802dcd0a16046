// "Cancel and return to the application", from any step: the interaction
// ends with access_denied and the browser goes back to the client.
import type { InteractionStep, StepKit } from '../kit.ts';

export function abortStep(kit: StepKit): InteractionStep {
  return {
    forms: {
      abort: (ctx) => kit.finish(ctx, { error: 'access_denied', error_description: 'End-User aborted interaction' }, false),
    },
  };
}
