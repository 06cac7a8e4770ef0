package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// flagsFirst moves the flags that follow a command's positional arguments
// in front of them, so that `verity audit JOB --api URL` means what it says:
// urfave/cli stops reading flags at the first positional argument and would
// otherwise take `--api` and the URL as arguments. Everything after a
// lone "--" stays as it is. A flag the command does not define is moved too,
// so that it is reported as undefined instead of being taken for an
// argument.
func flagsFirst(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	// Global flags, then the command path.
	cmds, flags := app.Commands, app.Flags
	var leaf *cli.Command
	for len(rest) > 0 {
		tok := rest[0]
		if strings.HasPrefix(tok, "-") {
			n := flagTokens(flags, rest)
			out, rest = append(out, rest[:n]...), rest[n:]
			continue
		}
		c := findCommand(cmds, tok)
		if c == nil {
			break
		}
		out, rest = append(out, tok), rest[1:]
		leaf, cmds, flags = c, c.Subcommands, c.Flags
		if len(c.Subcommands) == 0 {
			break
		}
	}
	if leaf == nil || len(rest) == 0 {
		return append(out, rest...)
	}
	var moved, positional []string
	for len(rest) > 0 {
		tok := rest[0]
		switch {
		case tok == "--":
			positional = append(positional, rest...)
			rest = nil
		case strings.HasPrefix(tok, "-") && tok != "-":
			n := flagTokens(flags, rest)
			moved, rest = append(moved, rest[:n]...), rest[n:]
		default:
			positional, rest = append(positional, tok), rest[1:]
		}
	}
	out = append(out, moved...)
	return append(out, positional...)
}

// flagTokens is how many tokens the flag at args[0] takes: one for a
// boolean flag, a flag written name=value, or one the flags do not define;
// two otherwise (name, then value).
func flagTokens(flags []cli.Flag, args []string) int {
	name := strings.TrimLeft(args[0], "-")
	if strings.Contains(name, "=") {
		return 1
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if _, isBool := f.(*cli.BoolFlag); isBool || len(args) < 2 {
				return 1
			}
			return 2
		}
	}
	return 1
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.Name == name || c.HasName(name) {
			return c
		}
	}
	return nil
}

// runCLI runs the CLI with flags allowed after positional arguments.
func runCLI(app *cli.App, args []string) error { return app.Run(flagsFirst(app, args)) }
