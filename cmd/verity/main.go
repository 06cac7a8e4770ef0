// Command verity runs Verity: a local demo network, validator nodes, local
// testnets, output submission, certificate checks and key management.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"

	logging "github.com/ipfs/go-log/v2"
	"github.com/urfave/cli/v2"
)

// commands is filled by each command's file in its init function.
var commands []*cli.Command

func register(c *cli.Command) { commands = append(commands, c) }

// exitError carries a process exit code through urfave/cli.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(code int, err error) error { return &exitError{code: code, err: err} }

// oneMoreProc gives the Go runtime one processor more than the cores it
// would use, unless GOMAXPROCS is set in the environment, which then
// decides. A node's store commits end in fdatasync, and a goroutine in a
// system call keeps its processor until the runtime's monitor takes it
// back, which at a commit every few milliseconds can take milliseconds
// (the monitor sleeps longer while it finds nothing to take): a core
// idles meanwhile while work waits. With stores on a disk and the
// network saturated, the extra processor kept 1.82 to 1.90 of 2 cores
// busy instead of 1.59 to 1.67 (docs/performance.md, "A processor for
// the fsyncs").
// It also stops the runtime from following a change of the process's
// CPU limit while it runs.
func oneMoreProc() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
}

// defaultGOGC is the collector's target that verity runs with unless GOGC
// is set in the environment: the heap grows to three times what is live
// before a collection, not twice. A node allocates on every message and
// every store commit; with the default target its collections took about
// a tenth of the CPU at saturation, and a job that met one took
// milliseconds longer at light load. Measured with verity bench, 4 nodes
// in one process (docs/performance.md, "The collector's target"): at
// saturation 2,873 certificates/s against 2,532 (medians of 3
// interleaved rounds), 300 MB of memory a node against 217; at 20 jobs a
// second a p99 of 6.6 ms against 8.2 to 9.6.
const defaultGOGC = 200

// collectLess sets the collector's target to defaultGOGC, unless GOGC is
// set in the environment, which then decides.
func collectLess() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(defaultGOGC)
}

func newApp() *cli.App {
	sort.Slice(commands, func(i, j int) bool { return commands[i].Name < commands[j].Name })
	return &cli.App{
		Name:  "verity",
		Usage: "a decentralized verification network for AI outputs",
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "log-level",
				Usage:   "log level for all subsystems (debug, info, warn, error); GOLOG_LOG_LEVEL also works",
				EnvVars: []string{"VERITY_LOG_LEVEL"},
			},
		},
		Before: func(c *cli.Context) error {
			if lvl := c.String("log-level"); lvl != "" {
				if err := logging.SetLogLevel("*", lvl); err != nil {
					return fmt.Errorf("--log-level: %w", err)
				}
			}
			return nil
		},
		Commands:             commands,
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {},
	}
}

func main() {
	oneMoreProc()
	collectLess()
	if os.Getenv("GOLOG_LOG_LEVEL") == "" {
		logging.SetAllLoggers(logging.LevelError)
	}
	app := newApp()
	err := runCLI(app, os.Args)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if ee == nil || ee.err.Error() != "" {
		fmt.Fprintln(os.Stderr, "verity:", err)
	}
	os.Exit(code)
}
