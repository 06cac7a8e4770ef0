// Package models is the model side of Verified Generate: a node generates an
// answer to a prompt with a Generator, then the network verifies it.
//
// It holds a client for OpenAI-compatible /chat/completions endpoints
// (ChatClient, with per-attempt timeouts, bounded retries on 429 and 5xx,
// Retry-After, and a concurrency limit), generators (SimulatedGenerator,
// which answers from a knowledge base and hallucinates at a set, seeded
// rate; ChatGenerator, which asks a model), a claims.Verifier that asks a
// model for TRUE, FALSE or CANNOT TELL (ModelVerifier), and a
// claims.Decomposer that asks a model for a JSON list of atomic claims and
// falls back to the rule-based decomposer (ModelDecomposer). Spec and the
// New* constructors build any of them from configuration.
//
// Nothing here logs; the API key is read from the environment variable a
// configuration names and is never part of an error.
package models
