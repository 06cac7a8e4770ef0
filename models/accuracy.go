package models

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
)

// ErrAccuracyConfig is returned for an accuracy experiment that cannot run.
var ErrAccuracyConfig = errors.New("models: invalid accuracy experiment")

// JudgeFunc judges one claim; a claims.Verifier's Verify method is one.
type JudgeFunc func(ctx context.Context, c claims.Claim) claims.Verdict

// NewJudgeFunc makes the judge of validator i (0-based) of a panel for one
// configuration, given an oracle that knows every claim's truth and the
// validators' individual accuracy.
type NewJudgeFunc func(i int, accuracy float64, oracle JudgeFunc) (JudgeFunc, error)

// AccuracyConfig configures RunAccuracy.
type AccuracyConfig struct {
	// Claims is the number of claims judged per configuration; claim k is
	// true when k is even, so half are true and half false.
	Claims int
	// Accuracies are the individual validator accuracies to try.
	Accuracies []float64
	// Validators are the panel sizes to try (validators per claim).
	Validators []int
	// NewJudge builds each validator's judge.
	NewJudge NewJudgeFunc
}

// AccuracyRow is the result of one configuration.
type AccuracyRow struct {
	Accuracy   float64 `json:"accuracy"`
	Validators int     `json:"validators"`
	Claims     int     `json:"claims"`
	// CertifiedCorrect is the fraction of all claims whose certified verdict
	// matches the truth.
	CertifiedCorrect float64 `json:"certified_correct"`
	// CertifiedWrong is the fraction of all claims certified with the wrong verdict.
	CertifiedWrong float64 `json:"certified_wrong"`
	// Undecided is the fraction of claims without quorum.
	Undecided float64 `json:"undecided"`
	// SingleModel is the fraction of individual verdicts that match the truth.
	SingleModel float64 `json:"single_model"`
	// Predicted is P(X > n/2) for X ~ Bin(n, accuracy).
	Predicted float64 `json:"predicted"`
}

// RunAccuracy measures how often a panel of independent validators of a
// given accuracy certifies the right verdict. For every accuracy and panel
// size n it judges cfg.Claims claims of known truth (in jobs of at most
// consensus.MaxClaims claims), casts each validator's verdicts as one
// unsigned ballot per job, and decides every claim with consensus.Tally under
// the simple-majority rule CountQuorum(n/2+1, n).
func RunAccuracy(ctx context.Context, cfg AccuracyConfig) ([]AccuracyRow, error) {
	if cfg.Claims <= 0 || len(cfg.Accuracies) == 0 || len(cfg.Validators) == 0 || cfg.NewJudge == nil {
		return nil, fmt.Errorf("%w: need claims, accuracies, panel sizes and a judge", ErrAccuracyConfig)
	}
	texts := make([]string, cfg.Claims)
	truth := make(map[common.Hash]claims.Verdict, cfg.Claims)
	for k := range texts {
		texts[k] = fmt.Sprintf("Claim %d of the accuracy experiment.", k)
		truth[claims.HashText(texts[k])] = truthOf(k)
	}
	oracle := func(_ context.Context, c claims.Claim) claims.Verdict { return truth[c.Hash] }

	var rows []AccuracyRow
	for _, p := range cfg.Accuracies {
		if math.IsNaN(p) || p < 0 || p > 1 {
			return nil, fmt.Errorf("%w: accuracy %v not in [0, 1]", ErrAccuracyConfig, p)
		}
		for _, n := range cfg.Validators {
			if n <= 0 || n > consensus.MaxValidators {
				return nil, fmt.Errorf("%w: %d validators per claim", ErrAccuracyConfig, n)
			}
			row, err := runPanel(ctx, texts, p, n, oracle, cfg.NewJudge)
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// unsigned passes the tally's signature shape check (r = s = 1, v = 27) but
// signs nothing: the experiment feeds AddVerifiedBallot, which checks no
// signature, so that it measures the decision rule and not the crypto.
var unsigned = func() []byte {
	sig := make([]byte, 65)
	sig[31], sig[63], sig[64] = 1, 1, 27
	return sig
}()

func truthOf(k int) claims.Verdict {
	if k%2 == 0 {
		return claims.True
	}
	return claims.False
}

// panelSet is a validator set of n validators with stake 1 each. Nothing is
// signed, so the addresses need no keys. The panel measures how often a
// majority of honest but fallible validators is right, so its policy assumes
// no byzantine stake (the least fraction a policy can state) and allows the
// simple-majority count quorum; the security floor is not what it measures.
func panelSet(n int) (*consensus.ValidatorSet, error) {
	g := &consensus.Genesis{NetworkID: 1, Policy: &consensus.Policy{
		ByzantineBelow: consensus.Fraction{Num: 1, Den: consensus.MaxTotalStake},
		QuorumKinds:    []string{consensus.QuorumCount},
		MinStakeQuorum: consensus.Fraction{Num: 1, Den: 2},
	}}
	for i := range n {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		addr := common.BytesToAddress(crypto.Keccak256([]byte("verity.accuracy.validator"), b[:]))
		g.Validators = append(g.Validators, consensus.Validator{Name: fmt.Sprintf("v%d", i), Address: addr, Stake: 1})
	}
	return g.ValidatorSet()
}

func runPanel(ctx context.Context, texts []string, p float64, n int, oracle JudgeFunc, newJudge NewJudgeFunc) (AccuracyRow, error) {
	set, err := panelSet(n)
	if err != nil {
		return AccuracyRow{}, err
	}
	judges := make([]JudgeFunc, n)
	for i := range judges {
		if judges[i], err = newJudge(i, p, oracle); err != nil {
			return AccuracyRow{}, fmt.Errorf("validator %d: %w", i, err)
		}
	}
	q := consensus.CountQuorum(uint64(n/2+1), uint64(n))
	row := AccuracyRow{Accuracy: p, Validators: n, Claims: len(texts), Predicted: MajorityProbability(n, p)}
	var correct, wrong, undecided, individualRight, individual int
	for start, job := 0, 0; start < len(texts); start, job = start+consensus.MaxClaims, job+1 {
		if err := ctx.Err(); err != nil {
			return AccuracyRow{}, err
		}
		batch := claims.FromTexts(texts[start:min(start+consensus.MaxClaims, len(texts))])
		var nonce common.Hash
		binary.BigEndian.PutUint64(nonce[24:], uint64(job))
		params := consensus.JobParams{
			NetworkID:  set.NetworkID(),
			OutputHash: claims.OutputHash(nonce[:]),
			ClaimsRoot: claims.RootOf(batch),
			ClaimCount: uint32(len(batch)),
			Quorum:     q,
			Gateway:    set.At(0).Address,
			Deadline:   1,
			Nonce:      nonce,
		}
		tally, err := consensus.NewTally(set, params)
		if err != nil {
			return AccuracyRow{}, err
		}
		assign := tally.Assignment()
		for pos := range n {
			// Validator positions in the set are in address order; judge
			// i is the validator at position i.
			idx := assign.ByValidator[pos]
			verdicts := make([]claims.Verdict, len(idx))
			for j, c := range idx {
				verdicts[j] = judges[pos](ctx, batch[c])
				individual++
				if verdicts[j] == truthOf(start+int(c)) {
					individualRight++
				}
			}
			b := &consensus.Ballot{
				NetworkID:  params.NetworkID,
				JobID:      tally.JobID(),
				OutputHash: params.OutputHash,
				ClaimsRoot: params.ClaimsRoot,
				Vote: consensus.Vote{
					Validator:    set.At(pos).Address,
					ClaimIndexes: idx,
					Verdicts:     verdicts,
					Signature:    unsigned,
				},
			}
			if _, err := tally.AddVerifiedBallot(b); err != nil {
				return AccuracyRow{}, fmt.Errorf("tally: %w", err)
			}
		}
		for c := range batch {
			switch o := tally.Outcome(c); {
			case o == consensus.OutcomeTrue && truthOf(start+c) == claims.True,
				o == consensus.OutcomeFalse && truthOf(start+c) == claims.False:
				correct++
			case o == consensus.OutcomeTrue || o == consensus.OutcomeFalse:
				wrong++
			default:
				undecided++
			}
		}
	}
	total := float64(len(texts))
	row.CertifiedCorrect = float64(correct) / total
	row.CertifiedWrong = float64(wrong) / total
	row.Undecided = float64(undecided) / total
	row.SingleModel = float64(individualRight) / float64(individual)
	return row, nil
}

// MajorityProbability is P(X > n/2) for X ~ Bin(n, p): the chance that a
// strict majority of n independent validators, each right with probability
// p, is right. Terms are summed in log space so that large n stays finite.
func MajorityProbability(n int, p float64) float64 {
	switch {
	case n <= 0 || p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	lp, lq := math.Log(p), math.Log1p(-p)
	ln, _ := math.Lgamma(float64(n + 1))
	var sum float64
	for k := n/2 + 1; k <= n; k++ {
		lk, _ := math.Lgamma(float64(k + 1))
		lnk, _ := math.Lgamma(float64(n - k + 1))
		sum += math.Exp(ln - lk - lnk + float64(k)*lp + float64(n-k)*lq)
	}
	return min(sum, 1)
}

// SimulatedJudges is a NewJudgeFunc of independent, seeded validators:
// validator i is claims.Simulated wrapped around the oracle, with the given
// accuracy, seed and validator name "v<i>". It errs by inverting the
// oracle's verdict and never abstains on a claim the oracle knows.
func SimulatedJudges(seed uint64) NewJudgeFunc {
	return func(i int, accuracy float64, oracle JudgeFunc) (JudgeFunc, error) {
		if math.IsNaN(accuracy) || accuracy < 0 || accuracy > 1 {
			return nil, fmt.Errorf("%w: accuracy %v not in [0, 1]", ErrAccuracyConfig, accuracy)
		}
		s := &claims.Simulated{Inner: oracleVerifier(oracle), Accuracy: accuracy, Seed: seed, Validator: fmt.Sprintf("v%d", i)}
		return s.Verify, nil
	}
}

// oracleVerifier makes a claims.Verifier of a JudgeFunc.
type oracleVerifier JudgeFunc

func (o oracleVerifier) Verify(ctx context.Context, c claims.Claim) claims.Verdict { return o(ctx, c) }
func (oracleVerifier) Name() string                                                { return "oracle" }
