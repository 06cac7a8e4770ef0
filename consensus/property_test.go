package consensus

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/internal/testtier"
	"github.com/verity-network/verity/sigs"
)

// randomCase is a random validator set, job and set of ballots, tallied into
// a certificate.
type randomCase struct {
	f    *fixture
	job  job
	cert *Certificate
}

func newRandomCase(t *testing.T, rng *rand.Rand) randomCase {
	t.Helper()
	n := 1 + rng.IntN(20)
	stakes := make([]uint64, n)
	for i := range stakes {
		if rng.IntN(4) == 0 {
			stakes[i] = 1 + rng.Uint64N(MaxTotalStake/20) // huge stakes: sums near the bound
		} else {
			stakes[i] = 1 + rng.Uint64N(100)
		}
	}
	f := newFixture(t, 1+rng.Uint64N(1000), stakes...)

	texts := make([]string, 1+rng.IntN(8))
	for i := range texts {
		texts[i] = fmt.Sprintf("claim %d of case %d", i, rng.Uint64())
	}
	replication := uint32(rng.IntN(n + 2))
	r := EffectiveReplication(f.set, replication)
	var q Quorum
	if rng.IntN(2) == 0 {
		den := 2 + rng.Uint64N(9)
		num := den/2 + rng.Uint64N(den-den/2)
		if 2*num < den {
			num++
		}
		q = StakeQuorum(num, den)
	} else {
		need := uint64(r/2 + 1)
		q = CountQuorum(need+rng.Uint64N(uint64(r)-need+1), uint64(r))
	}
	j := f.newJob(texts, q, replication, byte(rng.IntN(256)))
	tl := f.tally(t, j)

	// Each claim has a truth; each validator votes it, inverts it or abstains,
	// and some validators stay silent.
	truth := make([]claims.Verdict, len(texts))
	for i := range truth {
		truth[i] = claims.Verdict(1 + rng.IntN(2))
	}
	honesty := rng.Float64()
	for pos := range n {
		if len(tl.Assignment().ByValidator[pos]) == 0 || rng.IntN(5) == 0 {
			continue
		}
		mustAdd(t, tl, f.ballot(t, tl, pos, func(c uint32) claims.Verdict {
			switch x := rng.Float64(); {
			case x < honesty:
				return truth[c]
			case x < (1+honesty)/2:
				return truth[c].Invert()
			default:
				return claims.Abstain
			}
		}))
	}
	return randomCase{f: f, job: j, cert: mustCert(t, tl, j.claims)}
}

func cloneCert(t testing.TB, c *Certificate) *Certificate {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCertificate(data)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return back
}

type mutation struct {
	name   string
	mutate func(c *Certificate)
}

// mutations lists single changes to every signed or derived field of c.
func mutations(rc randomCase, rng *rand.Rand) []mutation {
	c, set := rc.cert, rc.f.set
	var ms []mutation
	add := func(name string, fn func(c *Certificate)) { ms = append(ms, mutation{name, fn}) }
	flip := func(h *common.Hash) { h[rng.IntN(32)] ^= byte(1 + rng.IntN(255)) }

	add("version", func(c *Certificate) { c.Version++ })
	add("network id", func(c *Certificate) { c.NetworkID++ })
	add("genesis hash", func(c *Certificate) { flip(&c.GenesisHash) })
	add("job id", func(c *Certificate) { flip(&c.JobID) })
	add("job nonce", func(c *Certificate) { flip(&c.JobNonce) })
	add("output hash", func(c *Certificate) { flip(&c.OutputHash) })
	add("claims root", func(c *Certificate) { flip(&c.ClaimsRoot) })
	add("quorum equivalent fraction", func(c *Certificate) {
		if c.Quorum.Kind == QuorumStake {
			c.Quorum.Num, c.Quorum.Den = 2*c.Quorum.Num, 2*c.Quorum.Den
		} else {
			c.Quorum.N--
		}
	})
	add("quorum kind", func(c *Certificate) {
		if c.Quorum.Kind == QuorumStake {
			c.Quorum = CountQuorum(uint64(set.Len()), uint64(set.Len()))
		} else {
			c.Quorum = DefaultQuorum
		}
	})
	add("replication", func(c *Certificate) { c.Replication++ })
	add("replication to the set size", func(c *Certificate) {
		if c.Replication == 0 {
			c.Replication = uint32(set.Len())
		} else {
			c.Replication = 0
		}
	})
	for _, s := range []Status{StatusVerified, StatusRejected, StatusUnresolved, StatusProvisional, ""} {
		if s != c.Status {
			add("status "+string(s), func(c *Certificate) { c.Status = s })
		}
	}
	for i := range c.Claims {
		add(fmt.Sprintf("claim %d text", i), func(c *Certificate) { c.Claims[i].Text += "." })
		add(fmt.Sprintf("claim %d text and hash", i), func(c *Certificate) {
			c.Claims[i].Text += "."
			c.Claims[i].Hash = claims.HashText(c.Claims[i].Text)
		})
		add(fmt.Sprintf("claim %d hash", i), func(c *Certificate) { flip(&c.Claims[i].Hash) })
		add(fmt.Sprintf("claim %d index", i), func(c *Certificate) { c.Claims[i].Index++ })
		for _, o := range []Outcome{OutcomeTrue, OutcomeFalse, OutcomeUndecided, OutcomePending} {
			if o != c.Claims[i].Verdict {
				add(fmt.Sprintf("claim %d verdict %s", i, o), func(c *Certificate) { c.Claims[i].Verdict = o })
			}
		}
		add(fmt.Sprintf("claim %d stake_for up", i), func(c *Certificate) { c.Claims[i].StakeFor++ })
		add(fmt.Sprintf("claim %d stake_total up", i), func(c *Certificate) { c.Claims[i].StakeTotal++ })
		if c.Claims[i].StakeFor > 0 {
			add(fmt.Sprintf("claim %d stake_for down", i), func(c *Certificate) { c.Claims[i].StakeFor-- })
		}
		add(fmt.Sprintf("claim %d stake_total down", i), func(c *Certificate) { c.Claims[i].StakeTotal-- })
	}
	if len(c.Claims) > 1 {
		add("claims swapped", func(c *Certificate) { c.Claims[0], c.Claims[1] = c.Claims[1], c.Claims[0] })
		add("last claim dropped", func(c *Certificate) { c.Claims = c.Claims[:len(c.Claims)-1] })
	}
	for k, b := range c.Ballots {
		other := set.At(rng.IntN(set.Len())).Address
		if other != b.Validator {
			add(fmt.Sprintf("ballot %d validator to another member", k), func(c *Certificate) { c.Ballots[k].Validator = other })
		}
		add(fmt.Sprintf("ballot %d validator to a stranger", k), func(c *Certificate) {
			c.Ballots[k].Validator = sigs.NewKeySigner(testKey(1000)).Address()
		})
		j := rng.IntN(len(b.ClaimIndexes))
		add(fmt.Sprintf("ballot %d claim index %d", k, j), func(c *Certificate) { c.Ballots[k].ClaimIndexes[j]++ })
		add(fmt.Sprintf("ballot %d claim index %d dropped", k, j), func(c *Certificate) {
			c.Ballots[k].ClaimIndexes = slices.Delete(c.Ballots[k].ClaimIndexes, j, j+1)
			c.Ballots[k].Verdicts = slices.Delete(c.Ballots[k].Verdicts, j, j+1)
		})
		for v := claims.Verdict(0); v <= 3; v++ {
			if v != b.Verdicts[j] {
				add(fmt.Sprintf("ballot %d verdict %d to %d", k, j, v), func(c *Certificate) { c.Ballots[k].Verdicts[j] = v })
			}
		}
		for _, byteAt := range []int{rng.IntN(32), 32 + rng.IntN(32), 64} {
			add(fmt.Sprintf("ballot %d signature byte %d", k, byteAt), func(c *Certificate) {
				c.Ballots[k].Signature[byteAt] ^= byte(1 + rng.IntN(255))
			})
		}
		add(fmt.Sprintf("ballot %d signature truncated", k), func(c *Certificate) {
			c.Ballots[k].Signature = c.Ballots[k].Signature[:64]
		})
		add(fmt.Sprintf("ballot %d duplicated", k), func(c *Certificate) {
			c.Ballots = slices.Insert(c.Ballots, k, c.Ballots[k])
		})
		if k > 0 {
			add(fmt.Sprintf("ballots %d and %d swapped", k-1, k), func(c *Certificate) {
				c.Ballots[k-1], c.Ballots[k] = c.Ballots[k], c.Ballots[k-1]
			})
		}
	}
	return ms
}

// TestPropertyAnyChangeBreaksCertificate builds random certificates, checks
// that they verify, and that every single change to a signed or derived
// field makes VerifyCertificate fail with a verification error.
// TestLongPropertyAnyChangeBreaksCertificate does the same over more
// certificates.
func TestPropertyAnyChangeBreaksCertificate(t *testing.T) {
	iterations := 40
	if testing.Short() {
		iterations = 20
	}
	propertyAnyChangeBreaksCertificate(t, iterations)
}

func TestLongPropertyAnyChangeBreaksCertificate(t *testing.T) {
	testtier.Long(t, "200 random certificates")
	propertyAnyChangeBreaksCertificate(t, 200)
}

func propertyAnyChangeBreaksCertificate(t *testing.T, iterations int) {
	rng := rand.New(rand.NewPCG(20260102, 7))
	checked, needed, notNeeded := 0, 0, 0
	for it := range iterations {
		rc := newRandomCase(t, rng)
		set := rc.f.set
		if err := VerifyCertificate(rc.cert, set, rc.job.output); err != nil {
			t.Fatalf("case %d: built certificate does not verify: %v", it, err)
		}
		if err := VerifyCertificate(cloneCert(t, rc.cert), set, rc.job.output); err != nil {
			t.Fatalf("case %d: certificate does not verify after a JSON round trip: %v", it, err)
		}
		for _, m := range mutations(rc, rng) {
			c := cloneCert(t, rc.cert)
			m.mutate(c)
			err := VerifyCertificate(c, set, rc.job.output)
			if err == nil {
				t.Fatalf("case %d (%d validators, quorum %s, replication %d): %s still verifies",
					it, set.Len(), rc.cert.Quorum, rc.cert.Replication, m.name)
			}
			if !IsVerificationError(err) {
				t.Fatalf("case %d: %s: %v is not a verification error", it, m.name, err)
			}
			checked++
		}
		n, nn := checkBallotRemoval(t, it, rc)
		needed, notNeeded = needed+n, notNeeded+nn
	}
	t.Logf("%d mutations rejected over %d certificates; %d removed ballots were needed, %d were not", checked, iterations, needed, notNeeded)
	if needed == 0 || notNeeded == 0 {
		t.Fatal("the random cases do not exercise both kinds of ballot removal")
	}
}

// checkBallotRemoval removes each ballot in turn. The certificate must then
// fail unless the remaining ballots give exactly the same verdicts, stakes
// and status: a ballot that only abstained or sided with the losing verdict
// is not needed to prove the outcome, and a certificate without it is the
// one an aggregator that never received it would have issued.
func checkBallotRemoval(t *testing.T, it int, rc randomCase) (needed, notNeeded int) {
	t.Helper()
	set := rc.f.set
	for k := range rc.cert.Ballots {
		c := cloneCert(t, rc.cert)
		c.Ballots = slices.Delete(c.Ballots, k, k+1)
		// The gateway signed the list of voters: without its signature
		// anew, any removal breaks the certificate.
		if err := VerifyCertificate(c, set, rc.job.output); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("case %d: removing ballot %d under the old gateway signature: %v, want ErrBadSignature", it, k, err)
		}
		rc.f.signCert(t, c)
		err := VerifyCertificate(c, set, rc.job.output)

		tl := rc.f.tally(t, rc.job)
		for i := range c.Ballots {
			b := &Ballot{NetworkID: c.NetworkID, JobID: c.JobID, OutputHash: c.OutputHash, ClaimsRoot: c.ClaimsRoot, Vote: c.Ballots[i]}
			if _, err := tl.AddVerifiedBallot(b); err != nil {
				t.Fatal(err)
			}
		}
		retallied := mustCert(t, tl, rc.job.claims)
		same := reflect.DeepEqual(retallied.Claims, rc.cert.Claims) && retallied.Status == rc.cert.Status
		switch {
		case same && err != nil:
			t.Fatalf("case %d: removing non-deciding ballot %d failed: %v", it, k, err)
		case !same && err == nil:
			t.Fatalf("case %d: removing deciding ballot %d still verifies", it, k)
		case same:
			notNeeded++
		default:
			needed++
		}
	}
	return needed, notNeeded
}

// TestPropertyIssuedAtIsSigned changes only issued_at on random
// certificates: the gateway's signature no longer holds; signed anew, the
// certificate is final again when issued after the deadline, and not final
// before it unless settled.
func TestPropertyIssuedAtIsSigned(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	early, late := 0, 0
	for range 40 {
		rc := newRandomCase(t, rng)
		c := cloneCert(t, rc.cert)
		shift := time.Duration(1+rng.IntN(1000)) * time.Second
		if rng.IntN(2) == 0 {
			shift = -shift
		}
		c.IssuedAt = c.IssuedAt.Add(shift)
		if err := VerifyCertificate(c, rc.f.set, rc.job.output); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("issued_at moved by %s under the old gateway signature: %v, want ErrBadSignature", shift, err)
		}
		rc.f.signCert(t, c)
		var settled bool
		err := VerifyCertificate(c, rc.f.set, rc.job.output, ReportSettled(&settled))
		switch {
		case shift > 0 || Settled(c, rc.f.set):
			late++
			if err != nil {
				t.Fatalf("re-signed %s after the deadline (or settled): %v", shift, err)
			}
			if settled != Settled(c, rc.f.set) {
				t.Fatalf("VerifyCertificate reports settled %v, Settled says %v", settled, !settled)
			}
		default:
			early++
			if !errors.Is(err, ErrNotFinal) || IsVerificationError(err) {
				t.Fatalf("unsettled, re-signed %s before the deadline: %v, want only ErrNotFinal", -shift, err)
			}
		}
	}
	if early == 0 || late == 0 {
		t.Fatalf("the random cases do not exercise both sides of the deadline (%d early, %d late)", early, late)
	}
}
