// A Contention (core/wire/idle-signals.ts) that never says the machine is busy: a pump under test polls and yields
// as its strategy says, whatever slow yields or run_delay the test's machine shows.
import { Contention } from "../../../src/core/wire/idle-signals.ts"

export class Calm extends Contention {
  override yielded() {}
  override sample() {}
}
