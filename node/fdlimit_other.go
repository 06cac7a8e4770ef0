//go:build !unix

package node

// fdLimit is 0: the descriptor limit is not known on this platform.
func fdLimit() int { return 0 }
