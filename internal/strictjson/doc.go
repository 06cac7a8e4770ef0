// Package strictjson is the one JSON decoder for input that comes from the
// network, a user or a file: gossiped messages, HTTP request bodies, a node's
// answers to a client, certificates, genesis files, testnet files.
//
// encoding/json accepts a document that other parsers read differently: it
// keeps the last of two members of the same name, where some parsers keep
// the first, and it matches member names without regard to case, so that
// {"status":"verified","Status":"rejected"} reads "verified" in jq and
// "rejected" in Go. Decode refuses every such document. It accepts exactly
// one JSON value, and refuses
//
//   - a member name that appears twice in an object (duplicate key),
//   - a member name that matches a field only when case is ignored, and any
//     other name that matches no field (unknown key),
//   - anything but white space after the value (trailing data),
//   - objects and arrays nested deeper than MaxDepth,
//   - more bytes than the caller's limit, which every call site states,
//   - invalid UTF-8, and escapes of lone UTF-16 surrogates.
//
// Every refusal is an *Error that wraps ErrInvalid; it names the offending
// key where there is one, and gives the byte offset where the decoder knows
// it.
//
// The decoding is github.com/go-json-experiment/json (the JSON v2 of the Go
// team) with its defaults, which give the rules above, plus
// RejectUnknownMembers. It honours encoding/json struct tags and the
// UnmarshalJSON and UnmarshalText methods, and decodes what encoding/json
// writes to the same Go values, so no option that restores the behaviour
// of encoding/json is set. Where the defaults of the two differ for our
// types, the input was malformed to begin with, and Decode refuses it:
//
//   - time.Time must be RFC 3339 exactly (encoding/json also takes a
//     one-digit hour, a comma before the fraction of a second and a zone
//     offset of 24 hours or more; json/v1's ParseTimeWithLooseRFC3339 would
//     take them again);
//   - a Go array takes a JSON array of exactly its length;
//   - time.Duration has no JSON form (none of our types holds one; the
//     configuration's Duration is text).
//
// The two also differ when decoding into a value that is not zero
// (MergeWithLegacySemantics); every call site decodes into a new value.
package strictjson
