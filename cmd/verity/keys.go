package main

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/verity-network/verity/sigs"
)

func init() {
	keystoreFlag := &cli.StringFlag{
		Name:      "keystore",
		Usage:     "keystore directory (go-ethereum format key files)",
		Required:  true,
		TakesFile: true,
	}
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print JSON"}
	register(&cli.Command{
		Name:  "keys",
		Usage: "create and list validator keys (go-ethereum keystore files)",
		Subcommands: []*cli.Command{
			{
				Name:  "new",
				Usage: "generate a secp256k1 key and store it encrypted in the keystore",
				Description: "The password comes from --password-file (first line) or from $" + passwordEnv + ".\n" +
					"The key file is a go-ethereum version 3 keystore file (scrypt, aes-128-ctr), mode 0600.",
				Flags: []cli.Flag{
					keystoreFlag,
					passwordFileFlag(),
					&cli.BoolFlag{Name: "light", Usage: "light scrypt parameters: fast to unlock, weaker; for testnets"},
					jsonFlag,
				},
				Action: keysNew,
			},
			{
				Name:   "list",
				Usage:  "list the keys of a keystore (addresses only; nothing is decrypted)",
				Flags:  []cli.Flag{keystoreFlag, jsonFlag},
				Action: keysList,
			},
		},
	})
}

func keysNew(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("keys new takes no arguments, got %q", c.Args().Slice())
	}
	password, err := keyPassword(c)
	if err != nil {
		return err
	}
	// The standard scrypt parameters take seconds on purpose: say so first.
	if c.Bool("light") {
		fmt.Fprintln(c.App.ErrWriter, "creating a key (light scrypt)...")
	} else {
		fmt.Fprintln(c.App.ErrWriter, "creating a key: encrypting it with scrypt takes a few seconds...")
	}
	addr, path, err := sigs.NewKey(c.String("keystore"), password, c.Bool("light"))
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeKeysJSON(c, sigs.KeyInfo{Address: addr, Path: path})
	}
	_, err = fmt.Fprintf(c.App.Writer, "address: %s\npath:    %s\n", addr.Hex(), path)
	return err
}

func keysList(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("keys list takes no arguments, got %q", c.Args().Slice())
	}
	keys, err := sigs.ListKeys(c.String("keystore"))
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if keys == nil {
			keys = []sigs.KeyInfo{}
		}
		return writeKeysJSON(c, keys)
	}
	for _, k := range keys {
		if _, err := fmt.Fprintf(c.App.Writer, "%s  %s\n", k.Address.Hex(), k.Path); err != nil {
			return err
		}
	}
	if len(keys) == 0 {
		fmt.Fprintf(c.App.ErrWriter, "no keys in %s\n", c.String("keystore"))
	}
	return nil
}

// writeKeysJSON prints v as indented JSON on the app's writer.
func writeKeysJSON(c *cli.Context, v any) error {
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
