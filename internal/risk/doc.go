// Package risk is the guard's risk engine: every customer action record
// (login, order, withdrawal, bank_change, contact_change, factor_add,
// factor_remove, password_change) gets exactly one event.Decision in
// microseconds, explained with stable reason codes.
//
// An Engine keeps state from the stream:
//
//   - per account, a compact profile (about 400 bytes plus 16 per holding,
//     identifiers stored as 64-bit hashes in small most-recently-used
//     arrays): known devices, networks (/24 for IPv4, /48 for IPv6), ASNs
//     and countries; sign-in hours; a bloom filter of issues ever held or
//     traded; fills per price band; days with low-priced buys; usual order
//     value; foreign and margin history; when contact details, factors and
//     the bank account last changed; holdings and cash (from account
//     snapshots and fills); consecutive failed logins;
//   - per account with recent actions, up to two live sessions (sign-in
//     context, factors proven, age, first action, context jumps) and the
//     current liquidation burst (sells and buys within one session or 60
//     minutes: share of holdings sold, proceeds, buys per issue);
//   - per instrument: price, ADV, market, halt and surveillance heat;
//   - run-time editable Lists (block, allow, watch, hosting, residential).
//
// Decide computes features into a flat struct, evaluates the live Policy's
// CEL rules over them through variables such as account.known_device,
// session.sold_share, order.value_jpy and instrument.heat (see Variables
// and README.md), maps the score and direct actions to a decision, runs the
// shadow policy beside it, then learns: profile facts (devices, networks,
// habits) only from allowed actions, session activity from actions that
// may go ahead (allowed or challenged), failed logins always.
//
// The engine never reads the wall clock: every age is measured in stream
// time (the record's own time), hours of day in JST, and reasons are listed
// in rule order, so replaying the same stream gives byte-identical
// decisions. Per-account state sits behind 256 shard locks; policies and
// lists are swapped atomically, so an Engine is safe for concurrent use.
//
// Policies are YAML files of CEL rules (LoadPolicy, LoadPolicyFile),
// validated with errors that name the line, rule and field, compiled once,
// and reloaded by WatchPolicy when the file changes. BuiltinPolicy covers
// the 2025 account-takeover patterns.
package risk
