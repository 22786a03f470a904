// One node:test `it` per step of a scenario, shared by the test files that run steps in order
// against one stack: the first step opens what the others need (pages connected, signed in), so
// when it fails the others are reported once as not run instead of each timing out; a failed step
// takes a FAILED screenshot and prints the tail of every process log.
import { after, it } from 'node:test';

/**
 * steps: [[name, step], …]; timeoutMs: per step; tag: the log prefix; firstFailed: why the others
 * are not run when the first step fails. Either `session` and `stack` (getters: they are made in
 * the file's `before`): each step gets the ChatSession, a failure is screenshot through it, and
 * both are closed after the file's tests; or `run(step)`, `screenshot()` and `tails()` for a file
 * that keeps its pages itself.
 */
export function stepTests(steps, { timeoutMs, tag, firstFailed, session, stack, run, screenshot, tails }) {
  if (session) {
    run ??= (step) => step(session());
    screenshot ??= () => session().screenshot('FAILED');
    tails ??= () => stack().tails();
    after(async () => {
      try {
        await session()?.close();
      } finally {
        await stack()?.stop();
      }
    });
  }
  let broken = '';
  for (const [name, step] of steps) {
    it(name, { timeout: timeoutMs }, async (t) => {
      if (broken) {
        t.skip(`not run: ${broken}`);
        return;
      }
      try {
        await run(step);
      } catch (e) {
        if (name === steps[0][0]) broken = firstFailed;
        await screenshot().catch(() => {});
        console.error(`  [${tag}] step failed: ${name}\n${tails()}`);
        throw e;
      }
    });
  }
}
