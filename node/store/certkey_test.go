package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	bolt "go.etcd.io/bbolt"

	"github.com/verity-network/verity/consensus"
)

// certKeys lists the keys of bucketCerts.
func certKeys(t *testing.T, s *Store) [][]byte { t.Helper(); return bucketKeys(t, s, bucketCerts) }

// bucketKeys lists the keys of a bucket.
func bucketKeys(t *testing.T, s *Store, bucket []byte) [][]byte {
	t.Helper()
	var keys [][]byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, _ []byte) error { keys = append(keys, bytes.Clone(k)); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestCertificatesInDeadlineOrder: certificates are stored under their
// job's deadline, then its id, whatever order their ids are in; a job's
// record fixes the deadline its certificate is stored under, and a
// certificate that comes before its job fixes it for the job.
func TestCertificatesInDeadlineOrder(t *testing.T) {
	s, path := openTemp(t)
	deadline := time.UnixMilli(1_800_000_000_000).UTC()
	var ids []common.Hash
	for i := range 3 {
		id := common.Hash{byte(0xf0 - 0x10*i)} // ids in the reverse order of deadlines
		ids = append(ids, id)
		j := &Job{ID: id, Message: []byte(`{}`), Status: consensus.StatusProvisional, Deadline: deadline.Add(time.Duration(i) * time.Second)}
		if err := s.PutJob(j); err != nil {
			t.Fatal(err)
		}
		c := fullCert()
		c.JobID, c.DeadlineMS = id, 1 // the job record's deadline stands
		if stored, err := s.PutCertificate(c, time.Now()); err != nil || !stored {
			t.Fatalf("put certificate %d: %v %v", i, stored, err)
		}
	}
	// A certificate before its job: its own deadline, kept when the job
	// comes.
	early := fullCert()
	early.JobID, early.DeadlineMS = common.Hash{0x01}, uint64(deadline.Add(time.Hour).UnixMilli())
	if _, err := s.PutCertificate(early, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.PutJob(&Job{ID: early.JobID, Message: []byte(`{}`), Status: consensus.StatusProvisional, Deadline: deadline}); err != nil {
		t.Fatal(err)
	}

	s = reopen(t, s, path)
	keys := certKeys(t, s)
	want := [][]byte{}
	for i, id := range ids {
		want = append(want, append(binary.BigEndian.AppendUint64(nil, uint64(deadline.UnixMilli())+uint64(i)*1000), id[:]...))
	}
	want = append(want, append(binary.BigEndian.AppendUint64(nil, early.DeadlineMS), early.JobID[:]...))
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("certificate keys\n%x\nwant\n%x", keys, want)
	}
	for _, id := range append(ids, early.JobID) {
		if ok, err := s.HasCertificate(id); err != nil || !ok {
			t.Fatalf("job %x: has certificate %v %v", id[:1], ok, err)
		}
		j, err := s.Job(id)
		if err != nil || j.Status != consensus.StatusVerified {
			t.Fatalf("job %x: %+v %v, want it verified by its certificate", id[:1], j, err)
		}
	}
	if ok, err := s.HasCertificate(common.Hash{0x02}); err != nil || ok {
		t.Fatalf("no certificate: %v %v", ok, err)
	}
}

// TestMoveCertificates: a store written with certificates under their
// job's id alone opens with them moved under their deadline, in both
// stored forms, more than one chunk of them, the old bucket gone, and each
// found by every reader; one that does not read is moved all the same,
// and one stored under the new key already is kept.
func TestMoveCertificates(t *testing.T) {
	s, path := openTemp(t)
	n := moveChunk + 3
	jsonCert := fullCert()
	jsonCert.JobID = common.Hash{0xee}
	jsonData, err := jsonCert.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	garbled := common.Hash{0xdd}
	kept := fullCert()
	kept.JobID = common.Hash{0xcc}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		old, err := tx.CreateBucket(bucketCertsByJob)
		if err != nil {
			return err
		}
		if err := old.Put(jsonCert.JobID[:], jsonData); err != nil {
			return err
		}
		// One that does not read, and one of a job whose certificate
		// is stored under the new key already (the first stands).
		if err := old.Put(garbled[:], []byte("{not a certificate")); err != nil {
			return err
		}
		if err := s.certPut(tx, kept.JobID, nil, kept.DeadlineMS, appendCert(nil, kept)); err != nil {
			return err
		}
		other := *kept
		other.Status = consensus.StatusRejected
		if err := old.Put(kept.JobID[:], appendCert(nil, &other)); err != nil {
			return err
		}
		for i := range n {
			c := fullCert()
			c.JobID = common.BytesToHash(binary.BigEndian.AppendUint32(nil, uint32(i)))
			c.DeadlineMS = uint64(n - i) // the reverse of id order
			c.IssuedAt = time.UnixMilli(int64(i)).UTC()
			if err := old.Put(c.JobID[:], appendCert(nil, c)); err != nil {
				return err
			}
		}
		// As before the index: built anew from the moved certificates.
		return tx.DeleteBucket(bucketCertIndex)
	}); err != nil {
		t.Fatal(err)
	}

	s = reopen(t, s, path)
	if err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketCertsByJob) != nil {
			t.Error("the old certificates bucket is still there")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	keys := certKeys(t, s)
	if len(keys) != n+3 {
		t.Fatalf("%d certificates moved, want %d", len(keys), n+3)
	}
	if got, err := s.Certificate(kept.JobID); err != nil || got.Status != kept.Status {
		t.Fatalf("certificate stored under the new key: %+v %v, want it kept", got, err)
	}
	if ok, err := s.HasCertificate(garbled); err != nil || !ok {
		t.Fatalf("a certificate that does not read was not moved: %v %v", ok, err)
	}
	if _, err := s.Certificate(garbled); err == nil {
		t.Fatal("a certificate that does not read reads")
	}
	// Under deadline 0 the garbled one comes first, the rest after.
	keys = keys[1:]
	for i, k := range keys[:n] {
		if d := binary.BigEndian.Uint64(k); d != uint64(i+1) {
			t.Fatalf("certificate %d under deadline %d, want %d", i, d, i+1)
		}
	}
	got, err := s.Certificate(jsonCert.JobID)
	if err != nil || !reflect.DeepEqual(got, jsonCert) {
		t.Fatalf("moved JSON certificate reads back as %+v (%v)", got, err)
	}
	if held, same, err := s.CompareCertificate(jsonCert, jsonData); err != nil || !held || !same {
		t.Fatalf("moved JSON certificate: held %v same %v %v", held, same, err)
	}
	last := common.BytesToHash(binary.BigEndian.AppendUint32(nil, uint32(n-1)))
	if ok, err := s.HasCertificate(last); err != nil || !ok {
		t.Fatalf("moved certificate: %v %v", ok, err)
	}
	var from []common.Hash
	if err := s.CertificatesIssuedFrom(time.UnixMilli(int64(n-2)), common.Hash{}, func(c *consensus.Certificate) bool {
		from = append(from, c.JobID)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	// The JSON certificate and the kept one were issued long after the
	// others; the one that does not read is not indexed.
	if want := []common.Hash{common.BytesToHash(binary.BigEndian.AppendUint32(nil, uint32(n-2))), last, kept.JobID, jsonCert.JobID}; !reflect.DeepEqual(from, want) {
		t.Fatalf("certificates issued from %d: %x, want %x", n-2, from, want)
	}

}

// putOldJob writes a job record as a store written before bucketLive
// held it: under its id in bucketJobs, beside its deadline and, with own,
// its own ballot.
func putOldJob(t *testing.T, tx *bolt.Tx, j *Job, own *consensus.Ballot) {
	t.Helper()
	data, err := encodeJob(j)
	if err != nil {
		t.Fatal(err)
	}
	jobs := tx.Bucket(bucketJobs)
	ms := binary.BigEndian.AppendUint64(nil, uint64(j.Deadline.UnixMilli()))
	for _, kv := range [][2][]byte{{j.ID[:], data}, {legacyDeadlineKey(j.ID), ms}} {
		if err := jobs.Put(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if own != nil {
		if err := jobs.Put(append(j.ID[:len(j.ID):len(j.ID)], 'o'), own.AppendJSON(nil)); err != nil {
			t.Fatal(err)
		}
	}
}

// oldStore makes the store at s as a store written before bucketLive:
// without bucketLive, and with n jobs in bucketJobs,
// the i-th under deadline n-i (the reverse of id order), every other one
// with its own ballot.
func oldStore(t *testing.T, s *Store, n int) {
	t.Helper()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketLive); err != nil {
			return err
		}
		for i := range n {
			j := &Job{ID: oldID(i), Message: []byte(`{}`), Status: consensus.StatusProvisional, Deadline: time.UnixMilli(int64(n - i))}
			var own *consensus.Ballot
			if i%2 == 0 {
				own = oldBallot(j.ID)
			}
			putOldJob(t, tx, j, own)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func oldID(i int) common.Hash {
	return common.BytesToHash(binary.BigEndian.AppendUint32(nil, uint32(i)))
}

func oldBallot(job common.Hash) *consensus.Ballot {
	return &consensus.Ballot{JobID: job, Vote: consensus.Vote{Validator: common.Address{5}, Signature: []byte{1}}}
}

// checkMoved fails unless bucketJobs is empty and every job of oldStore
// reads back with its deadline and, for every other one, its own ballot,
// which a second ballot does not replace.
func checkMoved(t *testing.T, s *Store, n int) {
	t.Helper()
	if keys := bucketKeys(t, s, bucketJobs); len(keys) != 0 {
		t.Fatalf("%d keys left in the jobs bucket, %x first", len(keys), keys[0])
	}
	for _, i := range []int{0, 1, n/2 - 1, n / 2, n - 2, n - 1} {
		j, err := s.Job(oldID(i))
		if err != nil || !j.Deadline.Equal(time.UnixMilli(int64(n-i))) {
			t.Fatalf("job %d: %+v %v", i, j, err)
		}
		if key := msKey(uint64(n-i), oldID(i)); s.db.View(func(tx *bolt.Tx) error {
			if !bytes.Equal(s.certKey(tx, oldID(i)), key) {
				t.Fatalf("job %d keyed under %x, want %x", i, s.certKey(tx, oldID(i)), key)
			}
			return nil
		}) != nil {
			t.Fatal("read")
		}
		_, err = s.OwnBallot(oldID(i))
		if i%2 == 0 && err != nil || i%2 == 1 && !errors.Is(err, ErrNotFound) {
			t.Fatalf("own ballot of job %d: %v", i, err)
		}
		if i%2 == 0 {
			if old, err := s.PutOwnBallot(&consensus.Ballot{JobID: oldID(i)}, time.UnixMilli(1)); err != nil || old == nil || old.Validator != (common.Address{5}) {
				t.Fatalf("own ballot of job %d, then another: %+v %v", i, old, err)
			}
		}
	}
}

// TestMoveJobs: a store written with job records, own ballots and
// deadlines under their job's id opens with them moved (the records under
// their deadline, the deadlines to their own bucket), more than one chunk
// of them, nothing left behind, and each found by every reader; a record
// stored without its deadline moves under its own, an own ballot stored
// alone under deadline 0. What an earlier version writes after the move
// is moved at the next Open.
func TestMoveJobs(t *testing.T) {
	s, path := openTemp(t)
	n := moveChunk + 3
	oldStore(t, s, n)
	alone, bare := common.Hash{0xaa}, common.Hash{0xbb}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		data, err := encodeJob(&Job{ID: bare, Message: []byte(`{}`), Deadline: time.UnixMilli(123)})
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketJobs).Put(bare[:], data); err != nil {
			return err
		}
		return tx.Bucket(bucketJobs).Put(append(alone[:len(alone):len(alone)], 'o'), oldBallot(alone).AppendJSON(nil))
	}); err != nil {
		t.Fatal(err)
	}

	s = reopen(t, s, path)
	defer func() { s.Close() }()
	checkMoved(t, s, n)
	if b, err := s.OwnBallot(alone); err != nil || b.Validator != (common.Address{5}) {
		t.Fatalf("own ballot stored alone: %+v %v", b, err)
	}
	if old, err := s.PutOwnBallot(oldBallot(alone), time.UnixMilli(77)); err != nil || old == nil {
		t.Fatalf("own ballot stored alone, then another: %+v %v", old, err)
	}
	if j, err := s.Job(bare); err != nil || !j.Deadline.Equal(time.UnixMilli(123)) {
		t.Fatalf("job stored without its deadline: %+v %v", j, err)
	}
	var got []time.Time
	if err := s.Jobs(func(j *Job) bool { got = append(got, j.Deadline); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != n+1 || !slices.IsSortedFunc(got, time.Time.Compare) {
		t.Fatalf("Jobs listed %d records (%v first), want %d in deadline order", len(got), got[:min(3, len(got))], n+1)
	}

	// An earlier version opens the moved store and stores a job and its
	// own ballot where it keeps them.
	late := common.Hash{0xcc}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		putOldJob(t, tx, &Job{ID: late, Message: []byte(`{}`), Deadline: time.UnixMilli(500)}, oldBallot(late))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path)
	if b, err := s.OwnBallot(late); err != nil || b.Validator != (common.Address{5}) {
		t.Fatalf("own ballot an earlier version stored after the move: %+v %v", b, err)
	}
	if old, err := s.PutOwnBallot(&consensus.Ballot{JobID: late}, time.UnixMilli(500)); err != nil || old == nil {
		t.Fatalf("a second own ballot replaced the one an earlier version stored: %+v %v", old, err)
	}
}

// TestMoveJobsCutShort: a move cut short (here after its first chunk)
// goes on at the next Open, and a record or a deadline already in the new
// layout stands.
func TestMoveJobsCutShort(t *testing.T) {
	s, path := openTemp(t)
	n := 2*moveChunk + 5
	oldStore(t, s, n)
	kept := oldID(3) // the record and deadline the new layout holds already
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucket(bucketLive); err != nil {
			return err
		}
		data, err := encodeJob(&Job{ID: kept, Message: []byte(`{"new":1}`), Deadline: time.UnixMilli(int64(n - 3))})
		if err != nil {
			return err
		}
		if err := s.putDeadline(tx, kept, uint64(n-3)); err != nil {
			return err
		}
		return tx.Bucket(bucketLive).Put(msKey(uint64(n-3), kept), data)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cut := errors.New("cut short")
	moveJobsHook = func() error { return cut }
	_, err := Open(path)
	moveJobsHook = nil
	if !errors.Is(err, cut) {
		t.Fatalf("open with the move cut short: %v", err)
	}
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkMoved(t, s, n)
	if j, err := s.Job(kept); err != nil || string(j.Message) != `{"new":1}` {
		t.Fatalf("job whose record was in the new layout: %+v %v, want that record", j, err)
	}
}
