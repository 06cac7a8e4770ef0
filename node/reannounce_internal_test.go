package node

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/sigs"
)

// TestAnnounceBook: a resend number is taken once, and only above the
// highest taken; answers are at most one per answerInterval; one judgment
// at a time; a copy of a ballot at most once per ballotRepeatInterval.
func TestAnnounceBook(t *testing.T) {
	b := newAnnounceBook(2)
	job := common.Hash{1}
	if b.stale(job, 0) {
		t.Fatal("an unknown job is stale")
	}
	if !b.take(job, 0) || b.take(job, 0) || !b.stale(job, 0) {
		t.Fatal("the first announcement is taken once")
	}
	if b.stale(job, 5) || !b.take(job, 5) || !b.stale(job, 4) || b.take(job, 3) {
		t.Fatal("a resend is new only above the highest taken")
	}
	now := time.Unix(1000, 0)
	if !b.answer(job, now) || b.answer(job, now.Add(answerInterval-time.Millisecond)) || !b.answer(job, now.Add(answerInterval)) {
		t.Fatal("answers are at most one per answerInterval")
	}
	if !b.startJudging(job) || b.startJudging(job) {
		t.Fatal("a second judgment of a job started")
	}
	b.doneJudging(job)
	if !b.startJudging(job) {
		t.Fatal("no judgment after the last one ended")
	}
	key := common.Hash{2}
	if !b.takeBallot(key, now) || b.takeBallot(key, now.Add(ballotRepeatInterval/2)) || !b.takeBallot(key, now.Add(ballotRepeatInterval)) {
		t.Fatal("a copy of a ballot is taken at most once per ballotRepeatInterval")
	}
	// Bounded: the oldest job is forgotten, and taken again as new.
	b.take(common.Hash{3}, 0)
	b.take(common.Hash{4}, 0)
	if b.stale(job, 5) {
		t.Fatal("the book holds more jobs than its capacity")
	}
}

// TestNonCanonicalRefused: a job or ballot in bytes other than its
// canonical encoding (the same message, new to gossip) is refused before
// its signature; a resend number the gateway did not sign fails the
// signature.
func TestNonCanonicalRefused(t *testing.T) {
	f := newStrictFixture(t)
	variants := map[string][]byte{
		"job with a space":        append([]byte("{ "), f.job[1:]...),
		"job with upper-case hex": bytes.Replace(f.job, []byte("0x"), []byte("0X"), 1),
		"ballot with a newline":   append(bytes.Clone(f.ballot), '\n'),
	}
	for name, data := range variants {
		var err error
		if bytes.Contains(data, []byte(`"claims"`)) {
			_, err = DecodeJob(data, f.set)
		} else {
			_, err = DecodeBallot(data, f.set)
		}
		if !errors.Is(err, ErrNotCanonical) && !errors.Is(err, ErrDecode) {
			t.Errorf("%s: %v, want ErrNotCanonical", name, err)
		}
	}
	if _, err := decodeJobShape(append([]byte("{ "), f.job[1:]...), f.set); !errors.Is(err, ErrNotCanonical) {
		t.Errorf("job with a space: %v, want ErrNotCanonical", err)
	}
	// The same job with a resend number its gateway did not sign.
	forged := append(bytes.Clone(f.job[:len(f.job)-1]), []byte(`,"resend":9}`)...)
	if _, err := DecodeJob(forged, f.set); !errors.Is(err, consensus.ErrBadSignature) {
		t.Fatalf("unsigned resend: %v, want ErrBadSignature", err)
	}
	// Signed by the gateway, it holds.
	m, err := DecodeJob(f.job, f.set)
	if err != nil {
		t.Fatal(err)
	}
	m.Resend = 9
	if err := m.Sign(sigs.NewKeySigner(f.keys[0])); err != nil {
		t.Fatal(err)
	}
	data, err := encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeJob(data, f.set); err != nil || got.Resend != 9 {
		t.Fatalf("a signed resend: %v", err)
	}
	if err := m.Sign(sigs.NewKeySigner(f.keys[1])); !errors.Is(err, consensus.ErrBadSignature) {
		t.Fatalf("signed by another validator than the gateway: %v", err)
	}
}
