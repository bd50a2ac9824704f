// The processes of ../shared/repro/keeper-window-other-uid.ts (issue 56), as they are: one JSON line (or "ready") each.
//   grab <topic>      another uid's loop: Topic.open(timeoutMs 200) again and again for 8 s, closing each handle
//                     that is not the keeper; says so when one is, and holds it 4 s
//   keeper <topic>    opens (creates) the topic and stays
//   member <topic>    joins and subscribes; after 4 s says whether it is the keeper and who is, and exits
//   newcomer <topic>  opens the topic (timeoutMs 1000) and says whether it joined or why not
import { Topic } from "../../../src/events/index.ts"

const [mode, name] = process.argv.slice(2)
if (mode === "grab") {
  const until = Date.now() + 8000
  while (Date.now() < until) {
    try {
      const t = await Topic.open(name!, { timeoutMs: 200 })
      if (t.isKeeper) {
        console.log(JSON.stringify({ tester: "I am the keeper now", uid: process.getuid!() }))
        await Bun.sleep(4000)
        process.exit(0)
      }
      t.close()
    } catch {}
  }
  console.log("tester gave up")
  process.exit(0)
}
if (mode === "keeper") {
  await Topic.open(name!)
  console.log("ready")
  await Bun.sleep(60000)
}
if (mode === "member") {
  const t = await Topic.open(name!)
  t.subscribe({})
  console.log("ready")
  await Bun.sleep(4000)
  console.log(JSON.stringify({ ownerSurvivor: { isKeeper: t.isKeeper, keeperPid: t.stats().keeperPid } }))
  process.exit(0)
}
if (mode === "newcomer") {
  try {
    const t = await Topic.open(name!, { timeoutMs: 1000 })
    console.log(JSON.stringify({ ownerNewcomer: "joined", keeperPid: t.stats().keeperPid }))
  } catch (e) {
    console.log(JSON.stringify({ ownerNewcomer: `${(e as Error).constructor.name}: ${(e as Error).message}` }))
  }
  process.exit(0)
}
