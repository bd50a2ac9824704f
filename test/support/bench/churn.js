// Keeps its runtime's compiler busy for $CHURN_MS ms (Bun or Node): a new hot function every few ms, each compiled
// by the optimizing tiers on their own threads (test/bench/settle.test.ts). A file, not `bun -e`: Bun compiles
// nothing on its JIT threads for code given with -e.
let sink = 0
const end = Date.now() + Number(process.env.CHURN_MS)
for (let k = 0; Date.now() < end; k++) {
  const f = new Function("a", "b", `let s = ${k}; for (let i = 0; i < a; i++) s = (s * 31 + i + b) | 0; return s`)
  for (let i = 0; i < 2000; i++) sink ^= f(50, i)
}
console.log("done", sink)
