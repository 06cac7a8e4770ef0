package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	bolt "go.etcd.io/bbolt"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "verity.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

// reopen closes s and opens its file again, closed when t ends.
func reopen(t *testing.T, s *Store, path string) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestWritesSurviveReopen(t *testing.T) {
	s, path := openTemp(t)
	id := common.Hash{1}
	if _, err := s.AddJob(&Job{ID: id, Message: []byte(`{}`), Status: consensus.StatusProvisional, Gateway: true}); err != nil {
		t.Fatal(err)
	}
	b := &consensus.Ballot{JobID: id, Vote: consensus.Vote{Validator: common.Address{9}}}
	if err := s.AddBallot(b, time.Unix(5, 0)); err != nil {
		t.Fatal(err)
	}
	c := &consensus.Certificate{JobID: id, Status: consensus.StatusVerified}
	if stored, err := s.PutCertificate(c, time.Unix(6, 0)); err != nil || !stored {
		t.Fatalf("put certificate: %v %v", stored, err)
	}
	if stored, err := s.PutCertificate(&consensus.Certificate{JobID: id, Status: consensus.StatusRejected}, time.Unix(7, 0)); err != nil || stored {
		t.Fatalf("second certificate replaced the first: %v %v", stored, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.AddBallot(b, time.Now()); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	j, err := s.Job(id)
	if err != nil || j.Status != consensus.StatusVerified || !j.FinalAt.Equal(time.Unix(6, 0)) {
		t.Fatalf("job after reopen: %+v %v", j, err)
	}
	if bs, err := s.Ballots(id); err != nil || len(bs) != 1 || !bs[0].ReceivedAt.Equal(time.Unix(5, 0)) {
		t.Fatalf("ballots after reopen: %+v %v", bs, err)
	}
	// A final status is never replaced by a provisional one.
	if err := s.PutJob(&Job{ID: id, Status: consensus.StatusProvisional}); err != nil {
		t.Fatal(err)
	}
	if j, _ := s.Job(id); j.Status != consensus.StatusVerified {
		t.Fatalf("status went back to %s", j.Status)
	}
}

// TestGroupCommit: concurrent writers all commit, and a failing write in a
// shared batch fails alone.
func TestGroupCommit(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%50 == 7 {
				errs[i] = s.update(KindAudit, func(*bolt.Tx) error { return boom })
				return
			}
			id := common.Hash{byte(i), byte(i >> 8), 1}
			_, errs[i] = s.AddJob(&Job{ID: id, Status: consensus.StatusProvisional})
		}()
	}
	wg.Wait()
	n := 0
	if err := s.Jobs(func(*Job) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if i%50 == 7 {
			if !errors.Is(err, boom) {
				t.Fatalf("write %d: %v, want its own error", i, err)
			}
		} else if err != nil {
			t.Fatalf("write %d failed with a neighbour's error: %v", i, err)
		}
	}
	if n != 196 {
		t.Fatalf("%d jobs stored, want 196", n)
	}
}

// TestFileStaysSmall: a store with one record is small on disk (bbolt
// options such as a large InitialMmapSize make every file 16 MiB at once).
func TestFileStaysSmall(t *testing.T) {
	s, path := openTemp(t)
	if _, err := s.AddJob(&Job{ID: common.Hash{7}, Status: consensus.StatusProvisional}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 1<<20 {
		t.Fatalf("store file is %d bytes after one write", st.Size())
	}
}

func TestCopyFile(t *testing.T) {
	s, path := openTemp(t)
	id := common.Hash{7}
	c := &consensus.Certificate{JobID: id, Status: consensus.StatusVerified}
	if stored, err := s.PutCertificate(c, time.Unix(6, 0)); err != nil || !stored {
		t.Fatalf("put certificate: %v %v", stored, err)
	}
	dst := filepath.Join(t.TempDir(), "copy.db")
	// The open store holds its file's exclusive lock.
	if err := CopyFile(path, dst, 50*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("copy of an open store: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := CopyFile(path, dst, 50*time.Millisecond); err != nil {
		t.Fatalf("copy of a closed store: %v", err)
	}
	cp, err := Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if got, err := cp.Certificate(id); err != nil || got.JobID != id {
		t.Fatalf("certificate in the copy: %v, %v", got, err)
	}
	// The original is untouched and opens again.
	s2, err := Open(path)
	if err != nil {
		t.Fatalf("reopen the original: %v", err)
	}
	s2.Close()
	if err := CopyFile(filepath.Join(t.TempDir(), "none.db"), dst, time.Second); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("copy of a missing store: %v, want ErrNotExist", err)
	}
}

// TestStatsCountCommitsAndWrites: Stats counts each committed transaction
// and each write by kind, and the pages bbolt wrote.
func TestStatsCountCommitsAndWrites(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	before := s.Stats()
	id := common.Hash{3}
	if err := s.PutJob(&Job{ID: id, Status: consensus.StatusProvisional, Gateway: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutOwnBallot(&consensus.Ballot{JobID: id}, time.Unix(60, 0)); err != nil {
		t.Fatal(err)
	}
	after := s.Stats()
	if after.Commits-before.Commits != 2 || after.Writes[KindJob]-before.Writes[KindJob] != 1 ||
		after.Writes[KindOwnBallot]-before.Writes[KindOwnBallot] != 1 || after.Writes[KindCertificate] != before.Writes[KindCertificate] {
		t.Fatalf("stats %+v then %+v: want 2 commits, a job and an own ballot", before, after)
	}
	// Each commit writes at least a data page and the meta page.
	if after.PageWrites-before.PageWrites < 4 {
		t.Fatalf("%d page writes for 2 commits", after.PageWrites-before.PageWrites)
	}
	if KindOwnBallot.String() != "own_ballot" {
		t.Fatalf("kind name %q", KindOwnBallot)
	}
}

// TestCertificateWithBallotsOneCommit: ballots stored with a certificate
// share its commit; a certificate already held costs no commit; Stats
// counts commits and writes by kind.
func TestCertificateWithBallotsOneCommit(t *testing.T) {
	s, path := openTemp(t)
	id := common.Hash{2}
	if err := s.PutJob(&Job{ID: id, Status: consensus.StatusProvisional, Gateway: true}); err != nil {
		t.Fatal(err)
	}
	before := s.Stats()
	var bs []StoredBallot
	for i := range 3 {
		bs = append(bs, StoredBallot{Ballot: consensus.Ballot{JobID: id, Vote: consensus.Vote{Validator: common.Address{byte(i + 1)}}}, ReceivedAt: time.Unix(int64(10+i), 0)})
	}
	c := &consensus.Certificate{JobID: id, Status: consensus.StatusVerified}
	if stored, err := s.PutCertificate(c, time.Unix(20, 0), bs...); err != nil || !stored {
		t.Fatalf("put certificate: %v %v", stored, err)
	}
	after := s.Stats()
	if after.Commits-before.Commits != 1 || after.Writes[KindCertificate]-before.Writes[KindCertificate] != 1 || after.PageWrites <= before.PageWrites {
		t.Fatalf("certificate with 3 ballots: stats %+v then %+v, want one commit of one certificate write", before, after)
	}
	if stored, err := s.PutCertificate(c, time.Unix(21, 0)); err != nil || stored {
		t.Fatalf("certificate stored twice: %v %v", stored, err)
	}
	if again := s.Stats(); again.Commits != after.Commits {
		t.Fatalf("a certificate already held cost %d commits", again.Commits-after.Commits)
	}
	s = reopen(t, s, path)
	got, err := s.Ballots(id)
	if err != nil || len(got) != 3 {
		t.Fatalf("ballots after reopen: %+v %v", got, err)
	}
	for i, b := range got {
		if !b.ReceivedAt.Equal(bs[i].ReceivedAt) || b.Ballot.Validator != bs[i].Ballot.Validator {
			t.Errorf("ballot %d: %+v, want %+v", i, b, bs[i])
		}
	}
}

// TestCertificateLeavesJobRecord: storing a certificate does not rewrite
// its job's record (a page write saved per certificate); Job and Jobs read
// the final status from the certificate and FinalAt from the index.
func TestCertificateLeavesJobRecord(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	id := common.Hash{4}
	if err := s.PutJob(&Job{ID: id, Message: []byte(`{}`), Status: consensus.StatusProvisional, Gateway: true}); err != nil {
		t.Fatal(err)
	}
	raw := func() []byte {
		var out []byte
		if err := s.db.View(func(tx *bolt.Tx) error { out = bytes.Clone(s.jobData(tx, id)); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := raw()
	c := &consensus.Certificate{JobID: id, Status: consensus.StatusRejected, IssuedAt: time.Unix(30, 0)}
	if stored, err := s.PutCertificate(c, time.Unix(31, 5)); err != nil || !stored {
		t.Fatalf("put certificate: %v %v", stored, err)
	}
	if after := raw(); !bytes.Equal(before, after) {
		t.Fatalf("the job record was rewritten: %s then %s", before, after)
	}
	j, err := s.Job(id)
	if err != nil || j.Status != consensus.StatusRejected || !j.FinalAt.Equal(time.Unix(31, 5)) || !j.Gateway {
		t.Fatalf("job: %+v %v", j, err)
	}
	n := 0
	if err := s.Jobs(func(j *Job) bool {
		if j.Status == consensus.StatusRejected && j.FinalAt.Equal(time.Unix(31, 5)) {
			n++
		}
		return true
	}); err != nil || n != 1 {
		t.Fatalf("Jobs: %d records with the certificate's status, want 1 (%v)", n, err)
	}
}

// A job record reads back as json.Marshal's would, its message byte for
// byte as given (encodeJob appends it as it is: no HTML escaping, no
// compaction).
func TestJobRecordKeepsTheMessageAsGiven(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for i, j := range []*Job{
		{ID: common.Hash{1}, Message: []byte(`{"output":"a < b & c > d","n":[1,2]}`), Output: "a < b", Prompt: "p",
			Gateway: true, Status: consensus.StatusProvisional, SubmittedAt: at, Deadline: at.Add(time.Second)},
		{ID: common.Hash{2}, Message: []byte(`{}`), Status: consensus.StatusVerified, FinalAt: at},
		{ID: common.Hash{3}, Status: consensus.StatusProvisional},
	} {
		if err := s.PutJob(j); err != nil {
			t.Fatal(err)
		}
		got, err := s.Job(j.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := *j
		if j.Message == nil {
			want.Message = []byte("null")
		}
		std, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		var viaStd Job
		if err := json.Unmarshal(std, &viaStd); err != nil {
			t.Fatal(err)
		}
		// encoding/json escapes the message's < > &; the store keeps it.
		viaStd.Message = want.Message
		if !reflect.DeepEqual(*got, want) || !reflect.DeepEqual(*got, viaStd) {
			t.Errorf("job %d: stored %+v\nwant %+v\njson.Marshal's %+v", i, *got, want, viaStd)
		}
	}
}

// A job message that is not one JSON value (or repeats a name, or is not
// UTF-8) is refused, not stored where
// it would make the record unreadable or set its other fields.
func TestJobRecordRefusesABadMessage(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	for _, msg := range []string{`{"a":1`, `{} ,"status":"verified"`, `{}{}`, `nope`, `{"a":1,"a":2}`, "\"\xff\""} {
		j := &Job{ID: common.Hash{7}, Message: []byte(msg), Status: consensus.StatusProvisional}
		if err := s.PutJob(j); !errors.Is(err, ErrBadJobMessage) {
			t.Errorf("message %q: PutJob %v, want ErrBadJobMessage", msg, err)
		}
		if _, err := s.AddJob(j); !errors.Is(err, ErrBadJobMessage) {
			t.Errorf("message %q: AddJob %v, want ErrBadJobMessage", msg, err)
		}
	}
	if _, err := s.Job(common.Hash{7}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused job was stored: %v", err)
	}
}

// A job record holds every field of Job but those tagged json:"-": a
// field added to Job but not written by encodeJob fails here.
func TestJobRecordHasEveryField(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	j := Job{ID: common.Hash{9}, Message: []byte(`{"a":1}`), Output: "out", Prompt: "in", Gateway: true,
		Status: consensus.StatusVerified, SubmittedAt: at, Deadline: at.Add(time.Minute), FinalAt: at.Add(time.Second)}
	v := reflect.ValueOf(j)
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("json") == "-" {
			continue // not stored
		}
		if v.Field(i).IsZero() {
			t.Fatalf("Job.%s is zero here: set it, and write it in encodeJob", v.Type().Field(i).Name)
		}
	}
	data, err := encodeJob(&j)
	if err != nil {
		t.Fatal(err)
	}
	var back Job
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, j) {
		t.Fatalf("record %s reads back as %+v", data, back)
	}
}

// TestEncodeBallotsIsMarshal: a stored ballot record is json.Marshal's
// bytes for it, which the reads decode.
func TestEncodeBallotsIsMarshal(t *testing.T) {
	bs := []StoredBallot{
		{ReceivedAt: time.Date(2026, 12, 3, 17, 4, 5, 123456789, time.UTC)},
		{Ballot: consensus.Ballot{NetworkID: 9, Vote: consensus.Vote{ClaimIndexes: []uint32{0, 4},
			Verdicts: []claims.Verdict{claims.True, claims.False}, Signature: make([]byte, 65),
			Batch: &consensus.BatchProof{Index: 1, Count: 2, Siblings: []common.Hash{{7}}}}},
			ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))},
	}
	got, err := encodeBallots(bs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range bs {
		want, err := json.Marshal(&bs[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[i], want) {
			t.Fatalf("ballot %d:\n got %s\nwant %s", i, got[i], want)
		}
	}
}

// TestCertificateReadsBothWays: a certificate stored as JSON, by a store
// written before the binary form, reads back the same whether its bytes
// are in the form a node writes (read by consensus.ParseCertificateJSON)
// or not (HTML escapes, indentation: read by encoding/json); and the same
// as one stored now, in the binary form.
func TestCertificateReadsBothWays(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	c := &consensus.Certificate{Version: 1, NetworkID: 7, Status: consensus.StatusVerified,
		Quorum:   consensus.Quorum{Kind: "stake", Num: 2, Den: 3},
		IssuedAt: time.UnixMilli(1_700_000_000_123).UTC(),
		Claims:   []consensus.CertClaim{{Text: "1 < 2 & 3 > 2", Verdict: "true", StakeFor: 3, StakeTotal: 3}},
		Ballots: []consensus.Vote{{ClaimIndexes: []uint32{0}, Verdicts: []claims.Verdict{claims.True}, Signature: make([]byte, 65),
			Batch: &consensus.BatchProof{Index: 1, Count: 2, Siblings: []common.Hash{{3}}}}},
		GatewaySignature: make([]byte, 65)}
	wire, err := c.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	marshalled, err := json.Marshal(c) // escapes < & >
	if err != nil {
		t.Fatal(err)
	}
	indented, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for i, data := range [][]byte{wire, marshalled, indented, nil} {
		c.JobID = common.Hash{byte(i + 1)}
		if data != nil {
			putJSONCert(t, s, c.JobID, data)
		} else if _, err := s.PutCertificate(c, time.Now()); err != nil {
			t.Fatal(err)
		}
		got, err := s.Certificate(c.JobID)
		if err != nil {
			t.Fatal(err)
		}
		// Stored as given: the bytes carry the job id they were encoded
		// with (none); the store keys them by c.JobID.
		got.JobID = c.JobID
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("form %d read back as\n%+v\nwant\n%+v", i, got, c)
		}
	}
}

// TestOwnBallotBesideItsJob: a validator's own ballot is stored right
// after its job, under the job's deadline, so that the two share a leaf
// page, and the job's deadline is logged (deadlines.go); Jobs lists the job
// alone; a ballot in the bucket of stores written before is still found,
// and still counts as this node's ballot for the job, once the store is
// opened again.
func TestOwnBallotBesideItsJob(t *testing.T) {
	s, path := openTemp(t)
	defer func() { s.Close() }()
	id := common.Hash{7}
	deadline := time.UnixMilli(90_000)
	b := &consensus.Ballot{JobID: id, Vote: consensus.Vote{Validator: common.Address{3}, Signature: []byte{1, 2}}}
	if old, err := s.PutOwnBallotWithJob(b, deadline, &Job{ID: id, Message: []byte(`{}`), Status: consensus.StatusProvisional, Deadline: deadline}); err != nil || old != nil {
		t.Fatalf("put own ballot: %v %v", old, err)
	}
	if keys := bucketKeys(t, s, bucketJobs); len(keys) != 0 {
		t.Fatalf("jobs bucket keys %x, want none", keys)
	}
	key := msKey(90_000, id)
	if keys := bucketKeys(t, s, bucketLive); len(keys) != 2 || !bytes.Equal(keys[0], key) || !bytes.Equal(keys[1], ownKey(key)) {
		t.Fatalf("live bucket keys %x, want the job, then its own ballot, under its deadline", keys)
	}
	if log := loggedDeadlines(t, s); len(log) != 1 || log[id] != 90_000 {
		t.Fatalf("deadline log %v, want the job's deadline", log)
	}
	if got, err := s.OwnBallot(id); err != nil || got.Validator != b.Validator {
		t.Fatalf("own ballot: %+v %v", got, err)
	}
	n := 0
	if err := s.Jobs(func(j *Job) bool { n++; return j.ID == id }); err != nil || n != 1 {
		t.Fatalf("Jobs listed %d records (%v), want the job alone", n, err)
	}
	// Another ballot for the job is not stored: the first is returned.
	if old, err := s.PutOwnBallot(&consensus.Ballot{JobID: id}, time.UnixMilli(1)); err != nil || old == nil || old.Validator != b.Validator {
		t.Fatalf("second own ballot: %+v %v", old, err)
	}

	// A store written before: the ballot in bucketOwn.
	legacy := common.Hash{8}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOwn).Put(legacy[:], b.AppendJSON(nil))
	}); err != nil {
		t.Fatal(err)
	}
	if s.legacyOwn {
		t.Fatal("a store opened with no ballot in bucketOwn looks there")
	}
	s.Close()
	var err error
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	if got, err := s.OwnBallot(legacy); err != nil || got.Validator != b.Validator {
		t.Fatalf("own ballot of a store written before: %+v %v", got, err)
	}
	if old, err := s.PutOwnBallot(&consensus.Ballot{JobID: legacy}, time.UnixMilli(1)); err != nil || old == nil {
		t.Fatalf("a ballot of a store written before was not seen: %+v %v", old, err)
	}
	if _, err := s.OwnBallot(common.Hash{9}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no ballot: %v", err)
	}
}

// TestBallotsAsReceipts: the ballots a gateway stores with its
// certificate that the certificate carries are kept as receipts (no
// record of their own) and read back whole, as they were, with the time
// each came, across a reopen; a ballot the certificate does not carry,
// or carries otherwise, is stored whole; with another certificate of the
// job stored first, every ballot is stored whole.
func TestBallotsAsReceipts(t *testing.T) {
	s, path := openTemp(t)
	id := common.Hash{5}
	vote := func(v byte, verdict claims.Verdict) consensus.Vote {
		return consensus.Vote{Validator: common.Address{v}, ClaimIndexes: []uint32{0}, Verdicts: []claims.Verdict{verdict},
			Signature: bytes.Repeat([]byte{v}, 65), Batch: &consensus.BatchProof{Index: 1, Count: 3, Siblings: []common.Hash{{v}, {v + 1}}}}
	}
	c := &consensus.Certificate{NetworkID: 7, JobID: id, OutputHash: common.Hash{6}, ClaimsRoot: common.Hash{7}, Status: consensus.StatusVerified,
		IssuedAt: time.Unix(40, 0), Ballots: []consensus.Vote{vote(1, claims.True), vote(2, claims.True), vote(3, claims.False)}}
	ballot := func(v consensus.Vote, at int64) StoredBallot {
		return StoredBallot{Ballot: consensus.Ballot{NetworkID: 7, JobID: id, OutputHash: common.Hash{6}, ClaimsRoot: common.Hash{7}, Vote: v}, ReceivedAt: time.Unix(at, 5)}
	}
	other := vote(2, claims.False) // validator 2, but not the ballot the certificate carries
	if err := s.PutJob(&Job{ID: id, Status: consensus.StatusProvisional, Gateway: true}); err != nil {
		t.Fatal(err)
	}
	bs := []StoredBallot{ballot(vote(3, claims.False), 30), ballot(vote(1, claims.True), 31), ballot(vote(4, claims.True), 32)}
	if stored, err := s.PutCertificate(c, time.Unix(41, 0), bs...); err != nil || !stored {
		t.Fatalf("put certificate: %v %v", stored, err)
	}
	if err := s.AddBallots([]StoredBallot{ballot(other, 33)}); err != nil {
		t.Fatal(err)
	}
	whole := func() (n int) {
		if err := s.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBallots).ForEach(func(k, _ []byte) error {
				if bytes.HasPrefix(k, id[:]) {
					n++
				}
				return nil
			})
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := whole(); n != 2 {
		t.Fatalf("%d ballots stored whole, want 2 (validator 4's, not in the certificate, and validator 2's other one)", n)
	}
	s = reopen(t, s, path)
	want := []StoredBallot{bs[1], ballot(other, 33), bs[0], bs[2]}
	got, err := s.Ballots(id)
	if err != nil || len(got) != len(want) {
		t.Fatalf("ballots: %+v %v", got, err)
	}
	for i := range want {
		if !bytes.Equal(got[i].Ballot.AppendJSON(nil), want[i].Ballot.AppendJSON(nil)) || !got[i].ReceivedAt.Equal(want[i].ReceivedAt) {
			t.Errorf("ballot %d:\n got %s at %v\nwant %s at %v", i, got[i].Ballot.AppendJSON(nil), got[i].ReceivedAt, want[i].Ballot.AppendJSON(nil), want[i].ReceivedAt)
		}
	}
	if j, err := s.Job(id); err != nil || !j.FinalAt.Equal(time.Unix(41, 0)) {
		t.Fatalf("job FinalAt with receipts in the index: %+v %v", j, err)
	}

	// Another certificate of the job stands: the ballots are stored whole.
	if stored, err := s.PutCertificate(&consensus.Certificate{JobID: id, Ballots: c.Ballots}, time.Unix(42, 0), ballot(vote(5, claims.True), 34)); err != nil || stored {
		t.Fatalf("second certificate: %v %v", stored, err)
	}
	if n := whole(); n != 3 {
		t.Fatalf("%d ballots stored whole, want 3", n)
	}
}

// TestSameBallotSeesEveryField: sameBallot tells apart two ballots that
// differ in any one field, however deep, so that a field added to a
// ballot cannot be lost by a receipt.
func TestSameBallotSeesEveryField(t *testing.T) {
	base := consensus.Ballot{NetworkID: 1, JobID: common.Hash{2}, OutputHash: common.Hash{3}, ClaimsRoot: common.Hash{4},
		Vote: consensus.Vote{Validator: common.Address{5}, ClaimIndexes: []uint32{0}, Verdicts: []claims.Verdict{claims.True},
			Signature: []byte{6}, Batch: &consensus.BatchProof{Index: 1, Count: 2, Siblings: []common.Hash{{7}}}}}
	if !sameBallot(&base, &base) {
		t.Fatal("a ballot differs from itself")
	}
	// clone is a deep copy of base, through the encoding.
	clone := func() consensus.Ballot {
		var c consensus.Ballot
		if rest, ok := consensus.ParseBallotJSON(base.AppendJSON(nil), &c); !ok || string(rest) != "}" {
			t.Fatal("base ballot does not read back")
		}
		return c
	}
	// Every leaf field, by its path of field indexes, is changed in a copy.
	var leaves [][]int
	var walk func(typ reflect.Type, path []int)
	walk = func(typ reflect.Type, path []int) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			p := append(slices.Clone(path), i)
			switch {
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, p)
			case f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
				leaves = append(leaves, p) // the pointer itself: nil
				walk(f.Type.Elem(), p)
			default:
				leaves = append(leaves, p)
			}
		}
	}
	walk(reflect.TypeFor[consensus.Ballot](), nil)
	if len(leaves) < 12 {
		t.Fatalf("%d fields found, want at least the 12 of today", len(leaves))
	}
	for _, path := range leaves {
		c := clone()
		v := reflect.ValueOf(&c).Elem()
		for i, idx := range path {
			if v.Kind() == reflect.Pointer {
				v = v.Elem()
			}
			v = v.Field(idx)
			if i < len(path)-1 {
				continue
			}
			switch v.Kind() {
			case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				v.SetUint(v.Uint() + 1)
			case reflect.Array:
				v.Index(0).SetUint(v.Index(0).Uint() + 1)
			case reflect.Slice:
				v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
			case reflect.Pointer:
				v.Set(reflect.Zero(v.Type()))
			default:
				t.Fatalf("field %v of kind %s: teach this test to change it", path, v.Kind())
			}
		}
		if sameBallot(&base, &c) || sameBallot(&c, &base) {
			t.Errorf("ballots that differ in field %v are the same to sameBallot", path)
		}
	}
}

// TestPutNewCertificateFirstStands: PutNewCertificate, which reads
// nothing before its write transaction, stores a certificate not held and
// keeps the first one of a job: a second, even with another outcome, is
// not stored, and the job reads the first.
func TestPutNewCertificateFirstStands(t *testing.T) {
	s, path := openTemp(t)
	first := fullCert()
	if stored, err := s.PutNewCertificate(first, time.Unix(30, 0)); err != nil || !stored {
		t.Fatalf("put new certificate: %v %v", stored, err)
	}
	other := *first
	other.Status = consensus.StatusRejected
	before := s.Stats()
	if stored, err := s.PutNewCertificate(&other, time.Unix(31, 0)); err != nil || stored {
		t.Fatalf("second certificate of the job: stored %v %v", stored, err)
	}
	if after := s.Stats(); after.Writes[KindCertificate] != before.Writes[KindCertificate]+1 {
		t.Fatalf("the second certificate's transaction was not run: %+v then %+v", before, after)
	}
	s = reopen(t, s, path)
	got, err := s.Certificate(first.JobID)
	if err != nil || got.Status != first.Status {
		t.Fatalf("certificate after reopen: %+v %v, want the first (%s)", got, err, first.Status)
	}
}

// TestOwnBallotWhateverDeadline: a job's own ballot is found whatever
// deadline each write of the job states. The first deadline stored for
// the job (here a certificate's) keys everything after it; a peer that
// states another one for the same job id, in a job or a ballot, cannot
// make this node store a second own ballot, before or after a restart.
func TestOwnBallotWhateverDeadline(t *testing.T) {
	s, path := openTemp(t)
	id := common.Hash{0x42}
	c := &consensus.Certificate{JobID: id, Status: consensus.StatusVerified, IssuedAt: time.Unix(40, 0), DeadlineMS: 1_000}
	if stored, err := s.PutCertificate(c, time.Unix(41, 0)); err != nil || !stored {
		t.Fatalf("put certificate: %v %v", stored, err)
	}
	first := &consensus.Ballot{JobID: id, Vote: consensus.Vote{Validator: common.Address{1}, Signature: []byte{1}}}
	job := &Job{ID: id, Message: []byte(`{}`), Status: consensus.StatusProvisional, Deadline: time.UnixMilli(2_000)}
	if old, err := s.PutOwnBallotWithJob(first, time.UnixMilli(2_000), job); err != nil || old != nil {
		t.Fatalf("first own ballot: %+v %v", old, err)
	}
	for round := range 2 {
		for _, ms := range []int64{1_000, 2_000, 3_000, 0} {
			second := &consensus.Ballot{JobID: id, Vote: consensus.Vote{Validator: common.Address{1}, Signature: []byte{2}}}
			old, err := s.PutOwnBallot(second, time.UnixMilli(ms))
			if err != nil || old == nil || !bytes.Equal(old.Signature, first.Signature) {
				t.Fatalf("round %d: a second own ballot stating deadline %d: %+v %v, want the first returned", round, ms, old, err)
			}
			if added, err := s.AddJob(&Job{ID: id, Message: []byte(`{}`), Deadline: time.UnixMilli(ms)}); err != nil || added {
				t.Fatalf("round %d: a job record stating deadline %d was added again: %v %v", round, ms, added, err)
			}
		}
		if b, err := s.OwnBallot(id); err != nil || !bytes.Equal(b.Signature, first.Signature) {
			t.Fatalf("round %d: own ballot %+v %v", round, b, err)
		}
		if j, err := s.Job(id); err != nil || j.Status != consensus.StatusVerified {
			t.Fatalf("round %d: job %+v %v", round, j, err)
		}
		s = reopen(t, s, path)
	}
	s.Close()
}
