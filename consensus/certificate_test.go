package consensus

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/verity-network/verity/claims"
)

var fiveClaims = []string{
	"Paris is the capital of France.",
	"The Seine flows through Paris.",
	"2 + 2 = 5.",
	"Water boils at 100 degrees Celsius at sea level.",
	"The Moon is made of cheese.",
}

// buildCert tallies one ballot per listed validator position with the given
// per-claim verdicts and returns the job and its certificate.
func buildCert(t *testing.T, f *fixture, texts []string, q Quorum, r uint32, votes map[int][]claims.Verdict) (job, *Certificate) {
	t.Helper()
	j := f.newJob(texts, q, r, 1)
	tl := f.tally(t, j)
	for pos := range f.set.Len() {
		if vs, ok := votes[pos]; ok {
			mustAdd(t, tl, f.ballot(t, tl, pos, per(vs...)))
		}
	}
	return j, mustCert(t, tl, j.claims)
}

func TestCertificateStatuses(t *testing.T) {
	T, F, A := claims.True, claims.False, claims.Abstain
	tests := []struct {
		name     string
		votes    map[int][]claims.Verdict
		status   Status
		verdicts []Outcome
	}{
		{"all true is verified",
			map[int][]claims.Verdict{0: {T, T}, 1: {T, T}, 2: {T, T}, 3: {T, T}},
			StatusVerified, []Outcome{OutcomeTrue, OutcomeTrue}},
		{"one false claim is rejected",
			map[int][]claims.Verdict{0: {T, F}, 1: {T, F}, 2: {T, F}},
			StatusRejected, []Outcome{OutcomeTrue, OutcomeFalse}},
		{"false wins over undecided",
			map[int][]claims.Verdict{0: {T, F}, 1: {F, F}, 2: {A, F}, 3: {T, T}},
			StatusRejected, []Outcome{OutcomeUndecided, OutcomeFalse}},
		{"a split claim is unresolved",
			map[int][]claims.Verdict{0: {T, T}, 1: {T, F}, 2: {T, T}, 3: {A, F}},
			StatusUnresolved, []Outcome{OutcomeTrue, OutcomeUndecided}},
		{"pending claims at the deadline are undecided",
			map[int][]claims.Verdict{0: {T, T}, 1: {T, T}},
			StatusUnresolved, []Outcome{OutcomeUndecided, OutcomeUndecided}},
		{"no ballots at all",
			map[int][]claims.Verdict{},
			StatusUnresolved, []Outcome{OutcomeUndecided, OutcomeUndecided}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 7, equalStakes(4)...)
			j, c := buildCert(t, f, twoClaims, DefaultQuorum, 0, tt.votes)
			if c.Status != tt.status {
				t.Fatalf("status %s, want %s", c.Status, tt.status)
			}
			for i, want := range tt.verdicts {
				if c.Claims[i].Verdict != want {
					t.Fatalf("claim %d: %s, want %s", i, c.Claims[i].Verdict, want)
				}
			}
			if len(c.Ballots) != len(tt.votes) || c.Ballots == nil {
				t.Fatalf("%d ballots, want %d", len(c.Ballots), len(tt.votes))
			}
			if err := VerifyCertificate(c, f.set, j.output); err != nil {
				t.Fatalf("verify: %v", err)
			}
			if err := VerifyCertificate(c, f.set, nil); err != nil {
				t.Fatalf("verify without output: %v", err)
			}
		})
	}
}

func TestCertificateStakeFields(t *testing.T) {
	T, F := claims.True, claims.False
	f := newFixture(t, 7, 10, 20, 30, 40)
	_, c := buildCert(t, f, twoClaims, DefaultQuorum, 0, map[int][]claims.Verdict{0: {T, F}, 1: {T, F}, 2: {T, T}, 3: {T, F}})
	for i, cl := range c.Claims {
		if cl.StakeTotal != 100 || cl.Index != uint32(i) || cl.Hash != claims.HashText(cl.Text) {
			t.Fatalf("claim %d: %+v", i, cl)
		}
	}
	if c.Claims[0].StakeFor != 100 {
		t.Fatalf("claim 0 stake_for %d, want 100", c.Claims[0].StakeFor)
	}
	// claim 1: everyone but position 2 says false
	want, verdict := 100-f.set.At(2).Stake, OutcomeUndecided
	if want*3 > 200 {
		verdict = OutcomeFalse
	}
	if c.Claims[1].Verdict != verdict || c.Claims[1].StakeFor != want {
		t.Fatalf("claim 1: %s with stake_for %d, want %s with %d", c.Claims[1].Verdict, c.Claims[1].StakeFor, verdict, want)
	}
}

func TestCertificateWrongClaimTexts(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	j := f.newJob(twoClaims, DefaultQuorum, 0, 1)
	if _, err := f.tally(t, j).Certificate(j.claims[:1], testIssuedAt); !errors.Is(err, ErrBadJob) {
		t.Fatalf("got %v, want %v", err, ErrBadJob)
	}
}

func TestVerifyCertificateOutput(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	j, c := buildCert(t, f, twoClaims, DefaultQuorum, 0, map[int][]claims.Verdict{0: {1, 1}, 1: {1, 1}, 2: {1, 1}})
	if err := VerifyCertificate(c, f.set, append(j.output, ' ')); !errors.Is(err, ErrOutputHash) {
		t.Fatalf("got %v, want %v", err, ErrOutputHash)
	}
	if err := VerifyCertificate(c, f.set, []byte{}); !errors.Is(err, ErrOutputHash) {
		t.Fatalf("empty output: got %v, want %v", err, ErrOutputHash)
	}
	if err := VerifyCertificate(nil, f.set, nil); !errors.Is(err, ErrCertificateShape) {
		t.Fatalf("nil certificate: got %v", err)
	}
}

// TestIssuedAtIsSignedByGateway: the gateway signs issued_at, so changing
// it breaks the gateway signature; a time that is not whole milliseconds,
// or before 1970, is malformed.
func TestIssuedAtIsSignedByGateway(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	j, c := buildCert(t, f, twoClaims, DefaultQuorum, 0, map[int][]claims.Verdict{0: {1, 2}, 1: {1, 2}, 2: {1, 2}})
	c.IssuedAt = c.IssuedAt.Add(time.Hour)
	if err := VerifyCertificate(c, f.set, j.output); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("changed issued_at: %v, want ErrBadSignature", err)
	}
	f.signCert(t, c)
	if err := VerifyCertificate(c, f.set, j.output); err != nil {
		t.Fatalf("re-signed by the gateway: %v", err)
	}
	for _, at := range []time.Time{c.IssuedAt.Add(time.Microsecond), time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)} {
		c.IssuedAt = at
		if err := VerifyCertificate(c, f.set, j.output); !errors.Is(err, ErrCertificateShape) {
			t.Fatalf("issued_at %s: %v, want ErrCertificateShape", at, err)
		}
	}
}

func TestCertificateJSONRoundTrip(t *testing.T) {
	f := newFixture(t, 7, 10, 20, 30, 40)
	j := f.newJob(fiveClaims, DefaultQuorum, 3, 1)
	tl := f.tally(t, j)
	for pos := range f.set.Len() {
		if len(tl.Assignment().ByValidator[pos]) > 0 {
			mustAdd(t, tl, f.ballot(t, tl, pos, per(1, 1, 2, 1, 2)))
		}
	}
	c := mustCert(t, tl, j.claims)
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCertificate(data)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if !reflect.DeepEqual(c, back) {
		t.Fatalf("round trip changed the certificate\n got %+v\nwant %+v", back, c)
	}
	if err := VerifyCertificate(back, f.set, j.output); err != nil {
		t.Fatalf("verify after round trip: %v", err)
	}
	again, _ := json.MarshalIndent(back, "", "  ")
	if !bytes.Equal(data, again) {
		t.Fatal("encoding is not stable across a round trip")
	}
	for _, key := range []string{`"verdicts": [`, `"signature": "0x`, `"quorum": {`, `"kind": "stake"`, `"issued_at": "2026-01-02T03:04:05Z"`} {
		if !bytes.Contains(data, []byte(key)) {
			t.Fatalf("encoding lacks %s:\n%s", key, data)
		}
	}
}

func TestParseCertificateStrict(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	_, c := buildCert(t, f, twoClaims, DefaultQuorum, 0, map[int][]claims.Verdict{0: {1, 1}, 1: {1, 1}, 2: {1, 1}})
	valid, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	s := string(valid)
	tests := []struct {
		name string
		data string
		want error
		sub  string
	}{
		{"unknown top-level field", strings.Replace(s, `{"version":1,`, `{"version":1,"extra":true,`, 1), ErrCertificateShape, `unknown key "extra"`},
		{"unknown claim field", strings.Replace(s, `"stake_total":`, `"weight":1,"stake_total":`, 1), ErrCertificateShape, `unknown key "weight" in /claims/0`},
		{"unknown ballot field", strings.Replace(s, `"signature":`, `"pubkey":"0x","signature":`, 1), ErrCertificateShape, `unknown key "pubkey" in /ballots/0`},
		{"unknown quorum field", strings.Replace(s, `"kind":"stake"`, `"kind":"stake","pct":67`, 1), ErrCertificateShape, `unknown key "pct" in /quorum`},
		{"trailing object", s + `{}`, ErrCertificateShape, "trailing data"},
		{"trailing garbage", s + ` garbage`, ErrCertificateShape, "trailing data"},
		{"trailing bracket", s + `]`, ErrCertificateShape, "trailing data"},
		{"verdict code 3", strings.Replace(s, `"verdicts":[1,1]`, `"verdicts":[1,3]`, 1), ErrCertificateShape, "unknown code 3"},
		{"verdict as string", strings.Replace(s, `"verdicts":[1,1]`, `"verdicts":["1",1]`, 1), ErrCertificateShape, "verdict"},
		{"short hash", strings.Replace(s, `"job_id":"0x`, `"job_id":"0x00`, 1), ErrCertificateShape, "hex string"},
		{"negative network id", strings.Replace(s, `"network_id":7`, `"network_id":-7`, 1), ErrCertificateShape, "network_id"},
		{"not an object", `[]`, ErrCertificateShape, "cannot decode JSON array"},
		{"empty input", ``, ErrCertificateShape, "empty input"},
		{"oversize", s + strings.Repeat(" ", MaxCertificateSize-len(s)+1), ErrCertificateTooLarge, "certificate too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.data == s {
				t.Fatal("test input equals the valid certificate")
			}
			_, err := ParseCertificate([]byte(tt.data))
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.sub) {
				t.Fatalf("got %v, want %v containing %q", err, tt.want, tt.sub)
			}
			if !IsVerificationError(err) {
				t.Fatal("not a verification error")
			}
		})
	}
	t.Run("white space up to the size limit", func(t *testing.T) {
		if _, err := ParseCertificate([]byte(s + strings.Repeat("\n", MaxCertificateSize-len(s)))); err != nil {
			t.Fatalf("rejected: %v", err)
		}
	})
}

// TestSignatureCache: a cache saves recoveries but never lets a bad
// signature or a wrong signer through.
func TestSignatureCache(t *testing.T) {
	cert, set, output := cacheFixture(t)
	cache := NewSignatureCache(64)
	for range 2 {
		if err := VerifyCertificate(cert, set, output, WithSignatureCache(cache)); err != nil {
			t.Fatal(err)
		}
	}
	// Every ballot's signature and the gateway's.
	if want := len(cert.Ballots) + 1; cache.seen.Len() != want {
		t.Fatalf("cache holds %d signatures, want %d", cache.seen.Len(), want)
	}
	// A forged signature misses the cache and fails.
	forged := *cert
	forged.Ballots = append([]Vote(nil), cert.Ballots...)
	sig := append([]byte(nil), forged.Ballots[0].Signature...)
	sig[10] ^= 1
	forged.Ballots[0].Signature = sig
	if err := VerifyCertificate(&forged, set, output, WithSignatureCache(cache)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged signature with a warm cache: %v", err)
	}
	// A cached signature does not vouch for another signer.
	d := Ballot{NetworkID: cert.NetworkID, JobID: cert.JobID, OutputHash: cert.OutputHash, ClaimsRoot: cert.ClaimsRoot, Vote: cert.Ballots[0]}
	if cache.verified(d.Digest(), d.Signature, cert.Ballots[1].Validator) {
		t.Fatal("cache vouched for the wrong signer")
	}
}

func cacheFixture(t *testing.T) (*Certificate, *ValidatorSet, []byte) {
	t.Helper()
	f := newFixture(t, 7, equalStakes(4)...)
	T := claims.True
	j, cert := buildCert(t, f, []string{"A is B.", "C is D."}, DefaultQuorum, 0, map[int][]claims.Verdict{0: {T, T}, 1: {T, T}, 2: {T, T}})
	return cert, f.set, j.output
}

func TestSettled(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	T, F := claims.True, claims.False
	texts := []string{"A is B.", "C is D."}
	cases := []struct {
		name  string
		votes map[int][]claims.Verdict
		want  bool
	}{
		{"decided by quorum", map[int][]claims.Verdict{0: {T, F}, 1: {T, F}, 2: {T, F}}, true},
		{"split beyond repair", map[int][]claims.Verdict{0: {T, T}, 1: {T, T}, 2: {F, T}, 3: {F, T}}, true},
		{"no ballots at all", map[int][]claims.Verdict{}, false},
		{"one missing ballot could still decide", map[int][]claims.Verdict{0: {T, T}, 1: {T, T}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c := buildCert(t, f, texts, DefaultQuorum, 0, tc.votes)
			if got := Settled(c, f.set); got != tc.want {
				t.Fatalf("Settled = %v, want %v (status %s)", got, tc.want, c.Status)
			}
			// An unsettled certificate issued before its deadline is not
			// final (ErrNotFinal); one issued at its deadline verifies
			// and reports unsettled (TestPropertyIssuedAtIsSigned).
			settled := !tc.want
			switch err := VerifyCertificate(c, f.set, nil, ReportSettled(&settled)); {
			case err == nil && settled != tc.want:
				t.Fatalf("VerifyCertificate reports settled %v, want %v", settled, tc.want)
			case err != nil && tc.want:
				t.Fatalf("a settled certificate does not verify: %v", err)
			case err != nil && !errors.Is(err, ErrNotFinal):
				t.Fatalf("an unsettled certificate issued early: %v, want ErrNotFinal", err)
			}
		})
	}
}
