package consensus

import (
	"crypto/ecdsa"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/sigs"
)

// testKey is the deterministic test key i: keccak256("verity test key i").
func testKey(i int) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte(fmt.Sprintf("verity test key %d", i))))
	if err != nil {
		panic(fmt.Sprintf("test key %d: %v", i, err)) // a keccak output is a valid key with overwhelming probability
	}
	return k
}

// fixture is a validator set with the keys of its validators.
type fixture struct {
	genesis *Genesis
	set     *ValidatorSet
	signers map[common.Address]*sigs.KeySigner
}

// laxPolicy assumes (almost) no byzantine stake, so that tests of the
// tally's mechanics may use any replication and quorum; tests of the
// security floor use DefaultPolicy (newFixturePolicy).
var laxPolicy = Policy{
	ByzantineBelow: Fraction{1, MaxTotalStake},
	QuorumKinds:    []string{QuorumStake, QuorumCount},
	MinStakeQuorum: Fraction{1, 2},
}

// newFixture builds a set whose validator i has key testKey(i) and
// stakes[i], under laxPolicy.
func newFixture(tb testing.TB, networkID uint64, stakes ...uint64) *fixture {
	tb.Helper()
	return newFixturePolicy(tb, networkID, &laxPolicy, stakes...)
}

// newFixturePolicy is newFixture under policy p (nil: the default).
func newFixturePolicy(tb testing.TB, networkID uint64, p *Policy, stakes ...uint64) *fixture {
	tb.Helper()
	f := &fixture{genesis: &Genesis{NetworkID: networkID, Policy: p}, signers: map[common.Address]*sigs.KeySigner{}}
	for i, s := range stakes {
		sg := sigs.NewKeySigner(testKey(i))
		f.signers[sg.Address()] = sg
		f.genesis.Validators = append(f.genesis.Validators, Validator{Name: fmt.Sprintf("v%d", i), Address: sg.Address(), Stake: s})
	}
	set, err := f.genesis.ValidatorSet()
	if err != nil {
		tb.Fatalf("validator set: %v", err)
	}
	f.set = set
	return f
}

// equalStakes is n stakes of 10.
func equalStakes(n int) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = 10
	}
	return s
}

// addr is the address of the validator at position pos in address order.
func (f *fixture) addr(pos int) common.Address { return f.set.At(pos).Address }

// job is a job over texts with the given rule and replication.
type job struct {
	output []byte
	claims []claims.Claim
	params JobParams
}

func (f *fixture) newJob(texts []string, q Quorum, replication uint32, nonce byte) job {
	cs := claims.FromTexts(texts)
	out := []byte(fmt.Sprint(texts))
	return job{
		output: out,
		claims: cs,
		params: JobParams{
			NetworkID:   f.set.NetworkID(),
			OutputHash:  claims.OutputHash(out),
			ClaimsRoot:  claims.RootOf(cs),
			ClaimCount:  uint32(len(cs)),
			Quorum:      q,
			Replication: replication,
			Gateway:     f.addr(0),
			Deadline:    uint64(testDeadline.UnixMilli()),
			Nonce:       common.Hash{nonce},
		},
	}
}

func (f *fixture) tally(tb testing.TB, j job) *Tally {
	tb.Helper()
	tl, err := NewTally(f.set, j.params)
	if err != nil {
		tb.Fatalf("new tally: %v", err)
	}
	return tl
}

// ballot signs, for the validator at pos, the verdict verdict(c) on each of
// its assigned claims c.
func (f *fixture) ballot(tb testing.TB, tl *Tally, pos int, verdict func(c uint32) claims.Verdict) *Ballot {
	tb.Helper()
	p := tl.Params()
	idx := tl.Assignment().ByValidator[pos]
	vs := make([]claims.Verdict, len(idx))
	for i, c := range idx {
		vs[i] = verdict(c)
	}
	b, err := SignBallot(f.signers[f.addr(pos)], p.NetworkID, tl.JobID(), p.OutputHash, p.ClaimsRoot, idx, vs)
	if err != nil {
		tb.Fatalf("sign ballot: %v", err)
	}
	return b
}

// all returns a verdict function giving v on every claim.
func all(v claims.Verdict) func(uint32) claims.Verdict {
	return func(uint32) claims.Verdict { return v }
}

// per returns a verdict function giving vs[c] on claim c.
func per(vs ...claims.Verdict) func(uint32) claims.Verdict {
	return func(c uint32) claims.Verdict { return vs[c] }
}

func mustAdd(tb testing.TB, tl *Tally, b *Ballot) {
	tb.Helper()
	if added, err := tl.AddBallot(b); err != nil || !added {
		tb.Fatalf("add ballot of %s: added=%v err=%v", b.Validator.Hex(), added, err)
	}
}

// testIssuedAt is when test certificates are issued: at the jobs'
// deadline, so that a certificate with claims left open is final.
var (
	testIssuedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	testDeadline = testIssuedAt
)

// mustCert builds the tally's certificate at testIssuedAt, signed by the
// job's gateway.
func mustCert(tb testing.TB, tl *Tally, cs []claims.Claim) *Certificate {
	tb.Helper()
	return mustCertAt(tb, tl, cs, testIssuedAt)
}

// mustCertAt is mustCert issued at a given time.
func (f *fixture) signCert(tb testing.TB, c *Certificate) {
	tb.Helper()
	if err := c.Sign(f.signers[c.Gateway]); err != nil {
		tb.Fatalf("sign certificate: %v", err)
	}
}

func mustCertAt(tb testing.TB, tl *Tally, cs []claims.Claim, at time.Time) *Certificate {
	tb.Helper()
	c, err := tl.Certificate(cs, at)
	if err != nil {
		tb.Fatalf("certificate: %v", err)
	}
	signer, ok := testSigners[c.Gateway]
	if !ok {
		tb.Fatalf("no test key for gateway %s", c.Gateway.Hex())
	}
	if err := c.Sign(signer); err != nil {
		tb.Fatalf("sign certificate: %v", err)
	}
	return c
}

// testSigners are the signers of testKey(0..127) by address: enough for
// the largest fixture (benchSizes).
var testSigners = func() map[common.Address]*sigs.KeySigner {
	m := map[common.Address]*sigs.KeySigner{}
	for i := range 128 {
		s := sigs.NewKeySigner(testKey(i))
		m[s.Address()] = s
	}
	return m
}()
