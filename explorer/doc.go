// Package explorer is the web page every Verity node serves at "/": jobs
// as their status changes, one job's timeline from acceptance to
// certificate with the reads and actions of its audit trail on the same
// axis, the certificate checked in the browser (EIP-712 signatures with
// ethers v6, vendored under assets/vendor), and the validator set.
//
// The page reads the node's public HTTP API only (docs/api.md) and never
// reads a provisional answer: it shows a job's claim texts and output once
// the job is final, so opening it leaves no read before proof in the
// audit trail. Everything it loads is embedded in the binary and served
// under a Content-Security-Policy that allows connections to the node
// alone. See docs/explorer.md.
package explorer
