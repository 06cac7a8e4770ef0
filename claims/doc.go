// Package claims turns an AI output into ordered atomic claims, hashes them,
// commits to them with a Merkle root that supports inclusion proofs, and
// holds the verifier backends that judge a single claim.
//
// The package is pure: no networking, no mutable global state.
//
// # Decomposition
//
// Decompose (and RuleDecomposer, which adds the MaxClaims limit) splits an
// output deterministically, in three steps:
//
//  1. Blocks. Lines are grouped into paragraphs; a blank line ends one. A
//     line starting with a list marker ("- ", "* ", "+ ", "• ", "1. ", "2) ",
//     "(a) ") starts a new item and loses the marker; a Markdown heading
//     ("# Title") is a block of its own; a leading "> " is dropped. A line
//     continues the previous one only when that one does not end a sentence
//     and the new line starts in lower case (or the previous one ends with a
//     comma or a word such as "of" or "the"); otherwise it starts a block.
//  2. Sentences. A block is cut after ".", "!", "?" or an ellipsis followed
//     by white space, outside quotes and brackets (a kind of quote or
//     bracket counts only when balanced in the block). A period does not end
//     a sentence when the next word starts in lower case, after a known
//     abbreviation (Dr., Mr., St., vs., e.g., ...), an initial (J.), a dotted
//     acronym (U.S.), or "No." before a number. An ellipsis ends a sentence
//     only before a capital letter. Decimals, 1,000,000, URLs and e-mail
//     addresses are never cut because no white space follows their periods.
//  3. Clauses. A sentence is cut at top-level semicolons, then at "and" and
//     "but", then at commas, but only where both sides read as independent
//     clauses: each has a subject followed by a verb, found with a small
//     lexicon of auxiliaries and common verbs with their -s and -ed forms.
//     "Salt and pepper", "between 3 and 5" and "Tom and Jerry are cats"
//     stay whole; "2 + 2 = 4 and 3 * 3 = 9" gives two claims.
//
// The canonical text of a claim is the clause with white space collapsed to
// single spaces and trimmed, dangling commas, semicolons and colons removed,
// the first letter capitalised when the clause was split off after "and",
// "but", ";" or ",", and a final period added when it does not already end
// with ".", "!", "?" or an ellipsis (possibly followed by closing quotes or
// brackets). Invalid UTF-8 becomes U+FFFD and control characters become
// spaces. A piece without any letter or digit is not a claim. The claim hash
// is keccak256 of the canonical text.
//
// # Verifiers
//
// A Verifier judges one claim: True, False or Abstain. The backends are a
// KnowledgeBase of known true and false statements (with the testnet sample
// from SampleKnowledgeBase), the exact Arithmetic checker, Chain (first
// verdict that is not Abstain wins) and Simulated, a model with a set
// accuracy whose errors are seeded per validator and claim. NewVerifier
// builds one from a VerifierSpec; "kb+arithmetic" is the default.
package claims
