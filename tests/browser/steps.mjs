// One node:test `it` per step of a scenario, shared by the test files that run steps in order
// against one stack: the first step opens what the others need (pages connected, signed in), so
// when it fails the others are reported once as not run instead of each timing out; a failed step
// takes a FAILED screenshot and prints the tail of every process log.
import { it } from 'node:test';

/**
 * steps: [[name, step], …]; run(step): runs one; timeoutMs: per step; tag: the log prefix;
 * screenshot(): the FAILED screenshot; tails(): the process log tails; firstFailed: why the
 * others are not run when the first step fails.
 */
export function stepTests(steps, { run, timeoutMs, tag, screenshot, tails, firstFailed }) {
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
