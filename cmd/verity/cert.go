package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

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
(which commits to the quorum rule, replication, gateway and deadline), the
network's security floor (the policy in genesis.json), claim hashes and
claims root, the assignment, every ballot signature, each claim's verdict
and stake, the status, and the gateway's signature. With --output, the
output's keccak256 must be the certificate's output hash. Then it says what
the certificate is worth: how much byzantine stake it survives, against the
network's assumption.

Exit codes:
  0  valid and final: the job's outcome is proven
  1  invalid: something in the certificate is wrong (the message says what)
  2  cannot check: a file is missing or unreadable, or the genesis is bad
  3  valid but not final: every signature holds, but the gateway did not
     sign it, or it leaves claims open before the job's deadline
Flags may come before or after CERT.json.`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "genesis", Usage: "the validator set's genesis.json", Required: true},
				&cli.StringFlag{Name: "output", Usage: "check the certificate against the output text in `FILE`"},
				&cli.BoolFlag{Name: "json", Usage: "print a JSON result"},
			},
			Action: runCertVerify,
			OnUsageError: func(c *cli.Context, err error, _ bool) error {
				return exitCode(certCannotCheck, fmt.Errorf("cert verify: %w", err))
			},
		}},
	})
}

// certVerifyOptions are the options of cert verify.
type certVerifyOptions struct {
	genesis, output, cert string
	json                  bool
}

// certVerifyArgs reads the certificate path and the flags (which may follow
// it: see flagsFirst).
func certVerifyArgs(c *cli.Context) (certVerifyOptions, error) {
	o := certVerifyOptions{genesis: c.String("genesis"), output: c.String("output"), json: c.Bool("json")}
	args := c.Args().Slice()
	switch {
	case len(args) == 0:
		return o, errors.New("give the certificate file: verity cert verify --genesis genesis.json CERT.json")
	case len(args) > 1:
		return o, fmt.Errorf("one certificate at a time, got also %q", args[1:])
	}
	o.cert = args[0]
	return o, nil
}

// Exit codes of cert verify.
const (
	certFinal       = 0
	certInvalid     = 1
	certCannotCheck = 2
	certNotFinal    = 3
)

// certVerifyResult is the --json output of cert verify. Result is "final",
// "not_final", "invalid" or "cannot_check". Status is the proven status and
// is set only when the certificate is valid; an invalid certificate that
// parsed reports what it claims as stated_status.
type certVerifyResult struct {
	Result       string           `json:"result"`
	Valid        bool             `json:"valid"`
	Final        bool             `json:"final"`
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
	Gateway      *common.Address  `json:"gateway,omitempty"`
	Worth        *certWorth       `json:"worth,omitempty"`
}

// certWorth is what a valid certificate is worth: the byzantine stake it
// survives against the network's assumption.
type certWorth struct {
	Summary string `json:"summary"`
	// ByzantineBelow is the network's fault assumption, a fraction of the
	// total stake.
	ByzantineBelow string `json:"byzantine_below"`
	TotalStake     uint64 `json:"total_stake"`
	// AssumedByzantine is the most byzantine stake the assumption allows.
	AssumedByzantine uint64 `json:"assumed_byzantine_stake"`
	// Tolerates is the most byzantine stake under which no claim of this
	// certificate could have been decided another way.
	Tolerates uint64 `json:"tolerates_byzantine_stake"`
}

func worthOf(cert *consensus.Certificate, set *consensus.ValidatorSet) *certWorth {
	p := set.Policy()
	w := &certWorth{
		ByzantineBelow:   p.ByzantineBelow.String(),
		TotalStake:       set.TotalStake(),
		AssumedByzantine: p.Assumed(set.TotalStake()),
		Tolerates:        consensus.CertificateTolerance(cert, set),
	}
	w.Summary = fmt.Sprintf("safe while byzantine stake is below %s of the total (at most %d of %d); this certificate holds up to %d",
		w.ByzantineBelow, w.AssumedByzantine, w.TotalStake, w.Tolerates)
	return w
}

// certOutcome classifies the result of verifyCertFiles.
func certOutcome(cert *consensus.Certificate, err error) (code int, result string) {
	switch {
	case err == nil:
		return certFinal, "final"
	case errors.Is(err, consensus.ErrNotFinal) && !consensus.IsVerificationError(err):
		return certNotFinal, "not_final"
	case cert != nil || consensus.IsVerificationError(err):
		return certInvalid, "invalid"
	}
	return certCannotCheck, "cannot_check"
}

func runCertVerify(c *cli.Context) error {
	o, err := certVerifyArgs(c)
	if err != nil {
		return exitCode(certCannotCheck, err)
	}
	cert, set, err := verifyCertFiles(o)
	code, result := certOutcome(cert, err)
	w := c.App.Writer
	if o.json {
		res := certVerifyResult{Result: result, Valid: code == certFinal || code == certNotFinal, Final: code == certFinal, Output: o.output != ""}
		if err != nil {
			res.Error = err.Error()
		}
		if cert != nil {
			id, gw := cert.JobID, cert.Gateway
			if res.Valid {
				res.Status = cert.Status
				res.Worth = worthOf(cert, set)
			} else {
				res.StatedStatus = cert.Status
			}
			res.JobID, res.Claims, res.Ballots, res.Gateway = &id, len(cert.Claims), len(cert.Ballots), &gw
			res.Genesis, res.Network, res.Quorum, res.Replicas = cert.GenesisHash.Hex(), cert.NetworkID, cert.Quorum.String(), cert.Replication
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if encErr := enc.Encode(res); encErr != nil {
			return exitCode(certCannotCheck, encErr)
		}
		if code != certFinal {
			return exitCode(code, errors.New(""))
		}
		return nil
	}
	switch code {
	case certCannotCheck:
		fmt.Fprintf(w, "cannot check the certificate: %v\n", err)
		return exitCode(code, errors.New(""))
	case certInvalid:
		fmt.Fprintf(w, "certificate invalid: %v\n", err)
		return exitCode(code, errors.New(""))
	case certNotFinal:
		fmt.Fprintf(w, "certificate NOT FINAL: %v\n", strings.TrimPrefix(err.Error(), consensus.ErrNotFinal.Error()+": "))
		fmt.Fprintf(w, "  every signature holds, but it does not prove the job's outcome (%s as stated)\n", cert.Status)
		printCertVerification(w, cert, set, o.output != "")
		return exitCode(code, errors.New(""))
	}
	fmt.Fprintf(w, "certificate valid and final: %s\n", cert.Status)
	printCertVerification(w, cert, set, o.output != "")
	return nil
}

// verifyCertFiles loads the genesis, the certificate and the output and
// verifies. The certificate is returned whenever it parsed. An error with
// no certificate and no verification sentinel means the files could not be
// read; a certificate that does not parse is returned as a verification
// error (ErrCertificateShape).
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
	var output []byte
	if o.output != "" {
		if output, err = os.ReadFile(o.output); err != nil {
			return nil, set, fmt.Errorf("output: %w", err)
		}
	}
	cert, err := consensus.ParseCertificate(data)
	if err != nil {
		return nil, set, err
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

// printCertVerification prints what a valid certificate states, each line
// within 80 columns.
func printCertVerification(w io.Writer, cert *consensus.Certificate, set *consensus.ValidatorSet, outputChecked bool) {
	fmt.Fprintf(w, "job:         %s\n", cert.JobID.Hex())
	fmt.Fprintf(w, "network:     %d\n", cert.NetworkID)
	fmt.Fprintf(w, "genesis:     %s\n", cert.GenesisHash.Hex())
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
	gw := cert.Gateway.Hex()
	if _, v, ok := set.Lookup(cert.Gateway); ok {
		gw += " (" + v.Name + ")"
	}
	signed := "signed"
	if len(cert.GatewaySignature) == 0 {
		signed = "NOT signed"
	}
	fmt.Fprintf(w, "gateway:     %s, %s\n", gw, signed)
	fmt.Fprintf(w, "issued:      %s\n", cert.IssuedAt.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(w, "deadline:    %s\n", time.UnixMilli(int64(cert.DeadlineMS)).UTC().Format(time.RFC3339Nano))
	worth := worthOf(cert, set)
	fmt.Fprintf(w, "worth:       safe while byzantine stake is below %s of the total\n", worth.ByzantineBelow)
	fmt.Fprintf(w, "             (at most %d of %d); this certificate holds up to %d\n", worth.AssumedByzantine, worth.TotalStake, worth.Tolerates)
	fmt.Fprintf(w, "output:      %s\n", cert.OutputHash.Hex())
	if outputChecked {
		fmt.Fprintf(w, "             matches the output given\n")
	} else {
		fmt.Fprintf(w, "             not checked (give --output FILE)\n")
	}
	fmt.Fprintf(w, "ballots:     %d from %d validators\n", len(cert.Ballots), set.Len())
	fmt.Fprintf(w, "claims:      %d\n", len(cert.Claims))
	for _, cl := range cert.Claims {
		head := fmt.Sprintf("  %3d  %-9s  %d/%d  ", cl.Index, cl.Verdict, cl.StakeFor, cl.StakeTotal)
		fmt.Fprintf(w, "%s%s\n", head, fitText(cl.Text, 80-len(head)))
	}
}

// fitText shortens s to at most width characters, ending in "…" when cut.
func fitText(s string, width int) string {
	r := []rune(s)
	if len(r) <= width || width < 2 {
		return s
	}
	return string(r[:width-1]) + "…"
}
