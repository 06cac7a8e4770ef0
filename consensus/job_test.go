package consensus

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
)

// signedJob is a valid job of f's network with gateway f.addr(0).
func signedJob(t *testing.T, f *fixture, texts ...string) *Job {
	t.Helper()
	cs := claims.FromTexts(texts)
	j := &Job{
		NetworkID:  f.set.NetworkID(),
		Nonce:      common.HexToHash("0x01"),
		OutputHash: claims.OutputHash([]byte(strings.Join(texts, " "))),
		ClaimsRoot: claims.RootOf(cs),
		Claims:     texts,
		Quorum:     DefaultQuorum,
		Deadline:   uint64(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()),
		Gateway:    f.addr(0),
	}
	j.JobID = j.Params().ID()
	if err := j.Sign(f.signers[j.Gateway]); err != nil {
		t.Fatal(err)
	}
	return j
}

func TestJobValidate(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	for _, tc := range []struct {
		name   string
		mutate func(j *Job)
		want   error
	}{
		{"valid", func(*Job) {}, nil},
		{"no claims", func(j *Job) { j.Claims = nil }, ErrBadJob},
		{"empty claim text", func(j *Job) { j.Claims = []string{""} }, ErrBadJob},
		{"claim text too long", func(j *Job) { j.Claims = []string{strings.Repeat("a", MaxClaimTextBytes+1)} }, ErrBadJob},
		{"claim text not UTF-8", func(j *Job) { j.Claims = []string{"\xff"} }, ErrBadJob},
		{"claims changed under the root", func(j *Job) { j.Claims = []string{"Water boils at 90 C."} }, ErrClaimsRoot},
		{"root changed under the job id", func(j *Job) {
			j.Claims = []string{"Water boils at 90 C."}
			j.ClaimsRoot = claims.RootOf(claims.FromTexts(j.Claims))
		}, ErrJobID},
		{"wrong network", func(j *Job) { j.NetworkID = 8 }, ErrWrongNetwork},
		{"unknown gateway", func(j *Job) { j.Gateway = common.HexToAddress("0x1") }, ErrUnknownValidator},
		{"gateway record at the limit", func(j *Job) { j.GatewayRecord = make([]byte, MaxGatewayRecordSize) }, nil},
		{"gateway record too large", func(j *Job) { j.GatewayRecord = make([]byte, MaxGatewayRecordSize+1) }, ErrBadJob},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := signedJob(t, f, "Water boils at 100 C.")
			tc.mutate(j)
			err := j.Validate(f.set)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("valid job refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestJobVerifySignature(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	j := signedJob(t, f, "Water boils at 100 C.")
	if _, err := j.VerifySignature(); err != nil {
		t.Fatalf("signed job: %v", err)
	}
	j.Resend = 5 // the gateway signs the resend number too
	if _, err := j.VerifySignature(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("resend changed after signing: got %v, want ErrBadSignature", err)
	}
	if err := j.Sign(f.signers[f.addr(1)]); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("signed by another validator than the gateway: got %v", err)
	}
}

// TestJobGatewayRecordOutsideSignature: the gateway record is a transport
// hint with its own signature; adding, changing or stripping it on the way
// changes neither the job id nor the validity of the job's signature.
func TestJobGatewayRecordOutsideSignature(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	j := signedJob(t, f, "Water boils at 100 C.")
	id := j.JobID
	j.GatewayRecord = []byte("a record")
	if _, err := j.VerifySignature(); err != nil {
		t.Fatalf("record added after signing: %v", err)
	}
	if err := j.Validate(f.set); err != nil || j.Params().ID() != id {
		t.Fatalf("record added: validate %v, id %s, want %s", err, j.Params().ID().Hex(), id.Hex())
	}
}

func TestBallotValidateBasicAndConflicts(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	s := f.signers[f.addr(1)]
	b, err := SignBallot(s, 7, common.HexToHash("0xaa"), common.HexToHash("0xbb"), common.HexToHash("0xcc"), []uint32{0, 1}, []claims.Verdict{claims.True, claims.False})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(f.set); err != nil {
		t.Fatalf("valid ballot refused: %v", err)
	}
	bad := *b
	bad.Verdicts = []claims.Verdict{claims.True}
	if err := bad.ValidateBasic(); !errors.Is(err, ErrBallotShape) {
		t.Errorf("one verdict for two claims: got %v", err)
	}
	bad.Verdicts = []claims.Verdict{claims.True, claims.Verdict(9)}
	if err := bad.ValidateBasic(); !errors.Is(err, ErrBallotShape) {
		t.Errorf("unknown verdict code: got %v", err)
	}
	other := *b
	other.NetworkID = 8
	if err := other.Validate(f.set); !errors.Is(err, ErrWrongNetwork) {
		t.Errorf("ballot of another network: got %v", err)
	}

	repeat, err := SignBallot(s, 7, b.JobID, b.OutputHash, b.ClaimsRoot, b.ClaimIndexes, b.Verdicts)
	if err != nil {
		t.Fatal(err)
	}
	if b.Conflicts(repeat) {
		t.Error("a repeat of the same ballot is not equivocation")
	}
	flipped, err := SignBallot(s, 7, b.JobID, b.OutputHash, b.ClaimsRoot, b.ClaimIndexes, []claims.Verdict{claims.False, claims.False})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Conflicts(flipped) {
		t.Error("a second, different ballot for the job is equivocation")
	}
	otherJob, err := SignBallot(s, 7, common.HexToHash("0xdd"), b.OutputHash, b.ClaimsRoot, b.ClaimIndexes, []claims.Verdict{claims.False, claims.False})
	if err != nil {
		t.Fatal(err)
	}
	if b.Conflicts(otherJob) {
		t.Error("ballots for two jobs do not conflict")
	}
}
