// Words for a NATS client's errors, for the typed errors of the rooms that use NATS. No NATS import here: the
// rooms' published types reach this file, and the NATS client packages are optional.

/**
 * A NATS client's error in words that say what to do: a right the server refuses this user (PROTOCOL §10.6,
 * §11.7, §12.6 say which each part needs), JetStream not enabled, no server at the address; else `otherwise`.
 */
export function explainNats(e: unknown, otherwise?: string): string {
  const m = e instanceof Error ? e.message : String(e)
  if (/permissions? violation/i.test(m))
    return `${m}: the server does not allow this NATS user that (docs/PROTOCOL.md §10.6, §11.7 and §12.6 list the rights each part needs)`
  if (/authorization violation|authentication (timeout|expired|revoked)|user authentication/i.test(m))
    return `${m}: the server refused these credentials; check the user and password or the token (in the URL as nats://user:pass@host or nats://token@host, or the options' user and pass, token or authenticator)`
  if (/no responders|\b503\b|jetstream.*not enabled/i.test(m))
    return `${m}: is the server running with JetStream (nats-server -js)?`
  if (/refused/i.test(m)) return `${m}: no NATS server answers at that address`
  return otherwise ? `${m}: ${otherwise}` : m
}

/** JetStream says the stream (or a KV bucket's stream) does not exist. */
export function streamNotFound(e: unknown): boolean {
  return (e as Error)?.name === "StreamNotFoundError" || /stream not found/i.test(String(e))
}

/**
 * A stream create that another process may have won: the server says the name is taken, or its answer never came
 * (nats-server 2.9 can drop the answers to parallel creates of one stream in a cluster, nats-server#3677, and one
 * of eight processes opening one contest at once then failed after 5 s). The caller looks again before failing.
 */
export function mayHaveLostCreateRace(e: unknown): boolean {
  return (e as Error)?.name === "TimeoutError" || /already in use|exists/i.test(String(e))
}
