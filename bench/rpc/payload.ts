// The payloads the RPC benches send: a JSON object of about 1 KiB, what a typical API call carries.
export function kibObject(): Record<string, unknown> {
  return {
    id: 123456,
    user: { name: "Ada Lovelace", email: "ada@example.com", roles: ["admin", "editor"], active: true },
    tags: Array.from({ length: 12 }, (_, i) => `tag-${i}`),
    items: Array.from({ length: 8 }, (_, i) => ({ sku: `SKU-${1000 + i}`, qty: i + 1, price: 9.99 * (i + 1) })),
    note: "x".repeat(300),
    createdAt: "2026-11-22T10:00:00.000Z",
  }
}
