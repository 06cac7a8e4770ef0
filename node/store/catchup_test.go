package store

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	bolt "go.etcd.io/bbolt"

	"github.com/verity-network/verity/consensus"
)

// TestJobRecordFollowsCertificate: whichever way a job record is written
// after its certificate was stored (a validator's record stored behind, or
// with its ballot), it says the certificate's status, not provisional.
func TestJobRecordFollowsCertificate(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	issued := time.UnixMilli(1767225600123)
	writes := map[string]func(id common.Hash) error{
		"AddJob": func(id common.Hash) error {
			_, err := s.AddJob(&Job{ID: id, Status: consensus.StatusProvisional})
			return err
		},
		"PutOwnBallotWithJob": func(id common.Hash) error {
			b := &consensus.Ballot{JobID: id, Vote: consensus.Vote{Validator: common.Address{9}}}
			_, err := s.PutOwnBallotWithJob(b, time.Time{}, &Job{ID: id, Status: consensus.StatusProvisional})
			return err
		},
		"PutJob": func(id common.Hash) error { return s.PutJob(&Job{ID: id, Status: consensus.StatusProvisional}) },
	}
	i := byte(0)
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			i++
			id := common.Hash{i, 0xce}
			c := &consensus.Certificate{JobID: id, Status: consensus.StatusRejected, IssuedAt: issued}
			if stored, err := s.PutCertificate(c, time.Now()); err != nil || !stored {
				t.Fatalf("put certificate: %v %v", stored, err)
			}
			if err := write(id); err != nil {
				t.Fatal(err)
			}
			j, err := s.Job(id)
			if err != nil {
				t.Fatal(err)
			}
			if j.Status != consensus.StatusRejected || !j.FinalAt.Equal(issued) {
				t.Fatalf("job record %s final at %v; the certificate says rejected, issued %v", j.Status, j.FinalAt, issued)
			}
		})
	}
}

// TestCertificatesIssuedFrom: certificates come in order of issue time
// then job id, from a time, and a scan resumes after the last one seen,
// including among certificates issued in the same millisecond.
func TestCertificatesIssuedFrom(t *testing.T) {
	s, path := openTemp(t)
	base := time.UnixMilli(1767225600000)
	var want []common.Hash
	for i := range 6 {
		id := common.Hash{0xa0 - byte(i)} // job ids in the opposite order of issue
		at := base.Add(time.Duration(i/2) * time.Millisecond)
		if _, err := s.PutCertificate(&consensus.Certificate{JobID: id, Status: consensus.StatusVerified, IssuedAt: at}, time.Now()); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	// Within one millisecond, job id order.
	want[0], want[1], want[2], want[3], want[4], want[5] = want[1], want[0], want[3], want[2], want[5], want[4]
	page := func(from time.Time, after common.Hash, limit int) (ids []common.Hash, last *consensus.Certificate) {
		t.Helper()
		err := s.CertificatesIssuedFrom(from, after, func(c *consensus.Certificate) bool {
			ids = append(ids, c.JobID)
			last = c
			return len(ids) < limit
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids, last
	}
	if ids, _ := page(base.Add(time.Millisecond), common.Hash{}, 10); len(ids) != 4 || ids[0] != want[2] {
		t.Fatalf("from the second millisecond: %x, want %x", ids, want[2:])
	}
	var got []common.Hash
	from, after := base, common.Hash{}
	for {
		ids, last := page(from, after, 3)
		if len(ids) == 0 {
			break
		}
		got = append(got, ids...)
		from, after = last.IssuedAt, last.JobID
	}
	if len(got) != len(want) {
		t.Fatalf("paged scan gave %d certificates, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("paged scan: %x, want %x", got, want)
		}
	}

	// A store written before the index has its certificates indexed when
	// it is opened.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketCertIndex) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ids, _ := page(base, common.Hash{}, 10); len(ids) != len(want) {
		t.Fatalf("after reopening a store without the index: %d certificates, want %d", len(ids), len(want))
	}
	if ok, err := s.HasCertificate(want[0]); err != nil || !ok {
		t.Fatalf("HasCertificate of a stored one: %v %v", ok, err)
	}
	if ok, err := s.HasCertificate(common.Hash{1}); err != nil || ok {
		t.Fatalf("HasCertificate of an unknown one: %v %v", ok, err)
	}
}

// TestCertificatesIssuedFromPages: a scan longer than one page of the
// index gives every certificate once, in order, and stops when fn says.
func TestCertificatesIssuedFromPages(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	base := time.UnixMilli(1767225600000)
	n := 3*certPageSize + 5
	for i := range n {
		c := &consensus.Certificate{JobID: common.Hash{byte(i), 0xfa}, Status: consensus.StatusVerified, IssuedAt: base.Add(time.Duration(i) * time.Millisecond)}
		if _, err := s.PutCertificate(c, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for _, stop := range []int{n, certPageSize, certPageSize + 1, 1} {
		var got []byte
		err := s.CertificatesIssuedFrom(base, common.Hash{}, func(c *consensus.Certificate) bool {
			got = append(got, c.JobID[0])
			return len(got) < stop
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != stop {
			t.Fatalf("stop after %d: got %d certificates", stop, len(got))
		}
		for i, b := range got {
			if int(b) != i {
				t.Fatalf("stop after %d: certificate %d is job %d", stop, i, b)
			}
		}
	}
}

// TestCertificatesIssuedFromOutsideReadTx: while a scan's fn waits (a
// peer reading a catch-up answer slowly), a commit that must grow the
// file's mapping still goes through: fn does not run inside a read
// transaction, which would hold the mapping for as long as fn takes.
func TestCertificatesIssuedFromOutsideReadTx(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	base := time.UnixMilli(1767225600000)
	for i := range 4 {
		c := &consensus.Certificate{JobID: common.Hash{byte(i), 0xfb}, Status: consensus.StatusVerified, IssuedAt: base}
		if _, err := s.PutCertificate(c, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	inFn, release := make(chan struct{}), make(chan struct{})
	scanned := make(chan error, 1)
	go func() {
		first := true
		scanned <- s.CertificatesIssuedFrom(base, common.Hash{}, func(*consensus.Certificate) bool {
			if first {
				first = false
				close(inFn)
				<-release
			}
			return true
		})
	}()
	<-inFn
	// 8 MiB in one value: more than the mapping of a new store, so the
	// commit must remap the file.
	wrote := make(chan error, 1)
	go func() {
		wrote <- s.update(KindAudit, func(tx *bolt.Tx) error { return tx.Bucket(bucketAudit).Put([]byte("big"), make([]byte, 8<<20)) })
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		close(release)
		t.Fatal("a commit waited a minute for a scan's fn to return")
	}
	close(release)
	if err := <-scanned; err != nil {
		t.Fatal(err)
	}
}
