// Command verity runs Verity: a local demo network, validator nodes, local
// testnets, output submission, certificate checks and key management.
package main

import (
	"errors"
	"fmt"
	"os"
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
