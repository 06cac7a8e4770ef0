package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ethereum/go-ethereum/common"
	"github.com/urfave/cli/v2"

	"github.com/verity-network/verity/consensus"
)

func init() {
	register(&cli.Command{
		Name:  "cert",
		Usage: "work with consensus certificates",
		Subcommands: []*cli.Command{{
			Name:      "verify",
			Usage:     "verify a certificate offline against a validator set",
			ArgsUsage: "CERT.json",
			Description: `Recomputes everything in the certificate from its signed ballots: the job id
(which commits to the quorum rule and replication), claim hashes and claims
root, the assignment, every ballot signature, each claim's verdict and stake
and the status. With --output, the output's keccak256 must be the
certificate's output hash.

Exit codes: 0 the certificate is valid, 1 it is not (or cannot be read).
Flags may come before or after CERT.json.`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "genesis", Usage: "the validator set's genesis.json", Required: true},
				&cli.StringFlag{Name: "output", Usage: "check the certificate against the output text in `FILE`"},
				&cli.BoolFlag{Name: "json", Usage: "print a JSON result"},
			},
			Action: runCertVerify,
		}},
	})
}

// certVerifyOptions are the options of cert verify after flags that follow
// the certificate path have been read.
type certVerifyOptions struct {
	genesis, output, cert string
	json                  bool
}

// certVerifyArgs reads the positional certificate path and any flags given
// after it (urfave/cli stops at the first positional argument).
func certVerifyArgs(c *cli.Context) (certVerifyOptions, error) {
	o := certVerifyOptions{genesis: c.String("genesis"), output: c.String("output"), json: c.Bool("json")}
	args := c.Args().Slice()
	if len(args) == 0 {
		return o, errors.New("give the certificate file: verity cert verify --genesis genesis.json CERT.json")
	}
	o.cert = args[0]
	fs := flag.NewFlagSet("cert verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.genesis, "genesis", o.genesis, "")
	fs.StringVar(&o.output, "output", o.output, "")
	fs.BoolVar(&o.json, "json", o.json, "")
	if err := fs.Parse(args[1:]); err != nil {
		return o, fmt.Errorf("after %s: %w", o.cert, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("one certificate at a time, got also %q", fs.Args())
	}
	return o, nil
}

// certVerifyResult is the --json output of cert verify. Status is the
// proven status and is set only when the certificate is valid; an invalid
// certificate that parsed reports what it claims as stated_status.
type certVerifyResult struct {
	Valid        bool             `json:"valid"`
	Error        string           `json:"error,omitempty"`
	Status       consensus.Status `json:"status,omitempty"`
	StatedStatus consensus.Status `json:"stated_status,omitempty"`
	JobID        *common.Hash     `json:"job_id,omitempty"`
	Claims       int              `json:"claims,omitempty"`
	Ballots      int              `json:"ballots,omitempty"`
	Output       bool             `json:"output_checked"`
	Genesis      string           `json:"genesis_hash,omitempty"`
	Network      uint64           `json:"network_id,omitempty"`
	Quorum       string           `json:"quorum,omitempty"`
	Replicas     uint32           `json:"replication,omitempty"`
}

func runCertVerify(c *cli.Context) error {
	o, err := certVerifyArgs(c)
	if err != nil {
		return exitCode(1, err)
	}
	cert, set, err := verifyCertFiles(o)
	w := c.App.Writer
	if o.json {
		res := certVerifyResult{Valid: err == nil, Output: o.output != ""}
		if err != nil {
			res.Error = err.Error()
		}
		if cert != nil {
			id := cert.JobID
			if err == nil {
				res.Status = cert.Status
			} else {
				res.StatedStatus = cert.Status
			}
			res.JobID, res.Claims, res.Ballots = &id, len(cert.Claims), len(cert.Ballots)
			res.Genesis, res.Network, res.Quorum, res.Replicas = cert.GenesisHash.Hex(), cert.NetworkID, cert.Quorum.String(), cert.Replication
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if encErr := enc.Encode(res); encErr != nil {
			return exitCode(1, encErr)
		}
		if err != nil {
			return exitCode(1, errors.New(""))
		}
		return nil
	}
	if err != nil {
		fmt.Fprintf(w, "certificate invalid: %v\n", err)
		return exitCode(1, errors.New(""))
	}
	printCertVerification(w, cert, set, o.output != "")
	return nil
}

// verifyCertFiles loads the genesis, the certificate and the output and
// verifies. The certificate is returned whenever it parsed.
func verifyCertFiles(o certVerifyOptions) (*consensus.Certificate, *consensus.ValidatorSet, error) {
	g, err := consensus.LoadGenesis(o.genesis)
	if err != nil {
		return nil, nil, err
	}
	set, err := g.ValidatorSet()
	if err != nil {
		return nil, nil, err
	}
	data, err := readFileLimit(o.cert, consensus.MaxCertificateSize)
	if err != nil {
		return nil, set, err
	}
	cert, err := consensus.ParseCertificate(data)
	if err != nil {
		return nil, set, err
	}
	var output []byte
	if o.output != "" {
		if output, err = os.ReadFile(o.output); err != nil {
			return cert, set, fmt.Errorf("output: %w", err)
		}
	}
	return cert, set, consensus.VerifyCertificate(cert, set, output)
}

// readFileLimit reads at most limit+1 bytes of path, so that an oversize
// certificate is refused without being read whole.
func readFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return data, nil
}

func printCertVerification(w io.Writer, cert *consensus.Certificate, set *consensus.ValidatorSet, outputChecked bool) {
	fmt.Fprintf(w, "certificate valid: %s\n", cert.Status)
	fmt.Fprintf(w, "job:         %s\n", cert.JobID.Hex())
	fmt.Fprintf(w, "network:     %d (genesis %s)\n", cert.NetworkID, cert.GenesisHash.Hex())
	rule := cert.Quorum.String()
	if cert.Quorum.Kind == consensus.QuorumStake {
		rule = "more than " + rule + " of assigned stake"
	} else {
		rule = fmt.Sprintf("at least %d of %d assigned validators", cert.Quorum.N, cert.Quorum.M)
	}
	repl := "all validators"
	if r := consensus.EffectiveReplication(set, cert.Replication); r < set.Len() {
		repl = fmt.Sprintf("%d validators per claim", r)
	}
	fmt.Fprintf(w, "quorum:      %s, %s\n", rule, repl)
	if outputChecked {
		fmt.Fprintf(w, "output:      matches %s\n", cert.OutputHash.Hex())
	} else {
		fmt.Fprintf(w, "output:      %s (not checked; give --output)\n", cert.OutputHash.Hex())
	}
	fmt.Fprintf(w, "ballots:     %d from %d validators\n", len(cert.Ballots), set.Len())
	fmt.Fprintf(w, "claims:      %d\n", len(cert.Claims))
	for _, cl := range cert.Claims {
		fmt.Fprintf(w, "  %3d  %-9s  %d/%d  %s\n", cl.Index, cl.Verdict, cl.StakeFor, cl.StakeTotal, cl.Text)
	}
}
