package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/urfave/cli/v2"

	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/testnet"
)

func init() {
	register(&cli.Command{
		Name:  "node",
		Usage: "run one validator node",
		Description: `Runs the validator node configured in HOME/config.toml until SIGINT or
SIGTERM, then stops it cleanly (exit 0). Flags override the config file. Once
the node has gossip peers it prints one line with its name, address, peer id,
p2p addresses and API URL.

Logs go to standard error: verity/* subsystems at info unless --log-level or
GOLOG_LOG_LEVEL says otherwise.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "home", Usage: "the node's home `DIR`, holding config.toml", Value: ".", EnvVars: []string{"VERITY_HOME"}},
			&cli.StringSliceFlag{Name: "bootstrap", Usage: "bootstrap peer `MULTIADDR` ending in /p2p/<peer id> (repeatable; replaces p2p.bootstrap)"},
			&cli.StringSliceFlag{Name: "listen", Usage: "p2p listen `MULTIADDR` (repeatable; replaces p2p.listen)"},
			&cli.StringFlag{Name: "api", Usage: "HTTP API listen `ADDR` such as 127.0.0.1:8080, or off (replaces api.listen)"},
		},
		Action: runNode,
	})
}

// nodeReadyPoll is how often the node command checks whether the node has
// joined the gossip mesh.
const nodeReadyPoll = 100 * time.Millisecond

func runNode(c *cli.Context) error {
	if !c.IsSet("log-level") && os.Getenv("GOLOG_LOG_LEVEL") == "" {
		// A long-running node says what it does; other commands stay quiet.
		if err := logging.SetLogLevelRegex("^verity/", "info"); err != nil {
			return err
		}
	}
	cfg, err := node.LoadConfig(c.String("home"))
	if err != nil {
		return err
	}
	if c.IsSet("bootstrap") {
		cfg.P2P.Bootstrap = c.StringSlice("bootstrap")
	}
	if c.IsSet("listen") {
		cfg.P2P.Listen = c.StringSlice("listen")
	}
	if c.IsSet("api") {
		cfg.API.Listen = c.String("api")
	}
	opts, err := node.FromConfig(cfg)
	if err != nil {
		return err
	}
	// A testnet's config.toml may make the node misbehave, for fault
	// tests; the behaviours live with the testnet.
	if err := testnet.ApplyBehaviour(cfg, &opts); err != nil {
		return err
	}
	nd, err := node.New(opts)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := nd.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "%s: started as peer %s on %s; waiting for gossip peers\n",
		nd.Name(), nd.PeerID(), strings.Join(nd.P2PAddrs(), ","))
	waitNodeReady(ctx, nd)
	if ctx.Err() == nil {
		api := nd.APIURL()
		if api == "" {
			api = "off"
		}
		fmt.Fprintf(c.App.Writer, "%s ready: address %s peer %s p2p %s api %s\n",
			nd.Name(), nd.Address().Hex(), nd.PeerID(), strings.Join(nd.P2PAddrs(), ","), api)
	}
	<-ctx.Done()
	stop() // a second signal now ends the process at once
	fmt.Fprintf(c.App.ErrWriter, "%s: stopping\n", nd.Name())
	if err := nd.Stop(); err != nil {
		return fmt.Errorf("stop %s: %w", nd.Name(), err)
	}
	return nil
}

// waitNodeReady returns once nd is ready or ctx ends.
func waitNodeReady(ctx context.Context, nd *node.Node) {
	t := time.NewTicker(nodeReadyPoll)
	defer t.Stop()
	for !nd.Ready() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
