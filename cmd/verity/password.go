package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/verity-network/verity/sigs"
)

// passwordEnv is the environment variable that holds a key password when no
// --password-file is given.
const passwordEnv = "VERITY_PASSWORD"

// passwordFileFlag is the one way to point a command at a password file.
// There is deliberately no flag that takes the password itself: it would
// show up in process listings and shell history.
func passwordFileFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name:      "password-file",
		Usage:     "file whose first line is the key password (otherwise $" + passwordEnv + ")",
		TakesFile: true,
	}
}

// keyPassword reads the key password for a command that has
// passwordFileFlag: from --password-file, else from $VERITY_PASSWORD.
func keyPassword(c *cli.Context) (string, error) {
	pw, err := sigs.ReadPassword(c.String("password-file"), passwordEnv)
	if errors.Is(err, sigs.ErrNoPassword) {
		return "", fmt.Errorf("%w: give --password-file or set %s", sigs.ErrNoPassword, passwordEnv)
	}
	return pw, err
}
