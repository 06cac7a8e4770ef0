// Package docstest runs the shell blocks of README.md and docs/*.md that are
// marked runnable, top to bottom, in a fresh copy of the repository, and
// compares what they print with what the docs show.
//
// A block is runnable when the line just before its opening fence is one
// of these HTML comments (invisible on a rendered page):
//
//	<!-- runnable -->              every command of the sh block exits 0
//	<!-- runnable exit=N -->       the same, but the block's last command exits N
//	<!-- runnable background ready="TEXT" -->
//	                               the sh block's one command is started in the
//	                               background (a testnet, say) and the run
//	                               goes on once it has printed TEXT; it is
//	                               stopped with SIGINT at the end
//	<!-- runnable transcript -->   a text block of "$ command" lines, each
//	                               followed by the output it shows: every
//	                               shown line must match a line the command
//	                               prints, with ids, hashes, times, numbers
//	                               and column spacing free to differ and
//	                               everything else (verdicts, statuses,
//	                               words) as shown; a line "..." shows
//	                               nothing. "$ echo $?" checks the exit
//	                               status of the command before it.
//
// All blocks run in one bash session, in document order (README.md, then
// docs/*.md by name), so variables and files carry over. Commands run with
// standard input closed and standard output in a pipe, with the copy's
// directory first on PATH (docs/ says "verity" for the binary the README
// builds there). The one change made
// to what the docs say: the testnet's ports. The default base port
// (26600, API ports from 27600) is moved to a free range: "testnet init"
// gets --base-port and "127.0.0.1:27600" names the new node0 API port.
//
// The test, TestLongDocs, is in the long tier: go test -race -run
// '^TestLongDocs$' ./internal/docstest/ with VERITY_TEST_TIER=long. It
// needs bash, git, curl and jq.
package docstest
