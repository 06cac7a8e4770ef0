package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	bolt "go.etcd.io/bbolt"
)

// Certificates are stored under their job's deadline, then the job's id
// (certKey), not under the id alone, and so are job records and this
// node's own ballots (in bucketLive): ids are random, so each record
// stored under its id went to a leaf page of its own, and in a B+tree of
// many leaves, to a branch page of its own too. Deadlines come in about
// the order records are written, so the records of a commit fall near the
// end of their bucket, several to a leaf: the buckets are filled as
// appended to (appendFill). What stays under the random id is the
// deadline itself (deadlineKey), 8 bytes where a job's record and ballot
// take about 2.6 KB. It is kept in bucketLive too, in a key range after
// the records (docs/performance.md, "Job records in deadline order"),
// and it is logged first and merged into that range in bulk later
// (deadlines.go). Finding a record by its job costs a lookup of the
// deadline first (deadlineOf).
//
// The deadline is written with the first record of the job a node
// stores (putJobAt, PutOwnBallotWithJob, certPut). Whatever deadline
// that entry holds is the one in the keys of the job's records: a job
// record and its certificate need not agree on it for either to be
// found.

// appendFill is how full bbolt fills a leaf it splits in the buckets
// keyed by time (bucketLive, bucketCerts, bucketCertIndex): records come
// in about key order there, so the leaf left behind is not written again
// and is best left nearly full (bbolt's default, half, suits random
// keys).
const appendFill = 0.9

// live is bucketLive, filled as appended to.
func live(tx *bolt.Tx) *bolt.Bucket { return appended(tx, bucketLive) }

// certs is bucketCerts, filled as appended to.
func certs(tx *bolt.Tx) *bolt.Bucket { return appended(tx, bucketCerts) }

func appended(tx *bolt.Tx, name []byte) *bolt.Bucket {
	b := tx.Bucket(name)
	if tx.Writable() {
		b.FillPercent = appendFill
	}
	return b
}

// deadlineKey is the key, in bucketLive, of a job's deadline: 0xff, then
// the job's id. Records there are keyed by a time in milliseconds first,
// whose top byte is 0 until the year 2,280,000 or so, so that deadlines
// sort after them; keys of either kind are told apart by their length
// (33 bytes here, 40 and 41 for records and own ballots) whatever their
// bytes.
func deadlineKey(job common.Hash) []byte {
	return append(append(make([]byte, 0, 1+common.HashLength), 0xff), job[:]...)
}

// legacyDeadlineKey is the key, in bucketJobs of a store written before
// bucketLive, of a job's deadline: right after the job's record.
func legacyDeadlineKey(job common.Hash) []byte { return append(job[:len(job):len(job)], 'd') }

// certKey is the key of a job's certificate in bucketCerts, and of its
// record and own ballot in bucketLive: the job's stored deadline, then its
// id; nil if no deadline is stored for the job (nor, then, any of them).
func (s *Store) certKey(tx *bolt.Tx, job common.Hash) []byte {
	ms, ok := s.deadlineOf(tx, job)
	if !ok {
		return nil
	}
	return msKey(ms, job)
}

// certGet reads a job's stored certificate, nil if none.
func (s *Store) certGet(tx *bolt.Tx, job common.Hash) []byte {
	_, data := s.certAt(tx, job)
	return data
}

// certAt returns the key of a job's certificate (certKey) and the
// certificate stored under it, nil if none.
func (s *Store) certAt(tx *bolt.Tx, job common.Hash) (key, data []byte) {
	key = s.certKey(tx, job)
	if key == nil {
		return nil, nil
	}
	return key, certs(tx).Get(key)
}

// certPut stores a job's certificate, data, under key, the job's certKey;
// with a nil key, under deadlineMS, stored as the job's deadline.
func (s *Store) certPut(tx *bolt.Tx, job common.Hash, key []byte, deadlineMS uint64, data []byte) error {
	if key == nil {
		if err := s.putDeadline(tx, job, deadlineMS); err != nil {
			return err
		}
		key = msKey(deadlineMS, job)
	}
	return certs(tx).Put(key, data)
}

// moveChunk is how many records moveCerts and moveJobs move in one
// transaction.
const moveChunk = 4096

// moveCerts moves the certificates of a store written before bucketCerts,
// stored under their job's id in bucketCertsByJob, to bucketCerts, and
// drops that bucket. A job with a certificate in both keeps the one in
// bucketCerts (a store opened by an earlier version after this one). It
// moves a chunk per transaction, so that a store of any size moves
// without holding it all in one; a move cut short by a crash goes on at
// the next Open.
func (s *Store) moveCerts() error {
	for {
		done := false
		err := s.db.Update(func(tx *bolt.Tx) error {
			old := tx.Bucket(bucketCertsByJob)
			if old == nil {
				done = true
				return nil
			}
			// Copied out: the puts and deletes below change the pages the
			// cursor's slices point into.
			var keys, values [][]byte
			c := old.Cursor()
			for k, v := c.First(); k != nil && len(keys) < moveChunk; k, v = c.Next() {
				keys, values = append(keys, bytes.Clone(k)), append(values, bytes.Clone(v))
			}
			if len(keys) == 0 {
				done = true
				return tx.DeleteBucket(bucketCertsByJob)
			}
			for i, k := range keys {
				if len(k) != common.HashLength {
					return fmt.Errorf("certificate under key %x: not a job id", k)
				}
				job := common.Hash(k)
				key, held := s.certAt(tx, job)
				if held == nil {
					// A certificate that does not read (none did, written
					// by this store) is moved as it is, under deadline 0:
					// it fails where it is read, as it did before.
					c, _ := readSummary(values[i])
					if err := s.certPut(tx, job, key, c.DeadlineMS, values[i]); err != nil {
						return err
					}
				} // else one is stored under the new key: the first stands
				if err := old.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || done {
			return err
		}
	}
}

// moveJobs moves what bucketJobs holds, from a store written before
// bucketLive (or by such a version since) to bucketLive: each deadline,
// stored under the job's id and 'd', to deadlineKey, and each job record
// and own ballot, stored under the job's id (and 'o'), to its certKey. A
// deadline already in bucketLive stands, and so does a record already
// under its new key. A record whose job has no deadline
// stored is moved under the record's own deadline, or 0 for an own ballot
// stored alone, which is then stored as the job's deadline. Like
// moveCerts, it moves a chunk per transaction; a move cut short by a
// crash goes on at the next Open. A key of no such shape is left where
// it is (none is written).
func (s *Store) moveJobs() error {
	var after []byte
	for {
		done := false
		err := s.db.Update(func(tx *bolt.Tx) error {
			jobs := tx.Bucket(bucketJobs)
			// Copied out: the puts and deletes below change the pages
			// the cursor's slices point into.
			var keys, values [][]byte
			c := jobs.Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
			}
			for ; k != nil && len(keys) < moveChunk; k, v = c.Next() {
				after = bytes.Clone(k)
				if len(k) == common.HashLength || len(k) == common.HashLength+1 && (k[common.HashLength] == 'o' || k[common.HashLength] == 'd') {
					keys, values = append(keys, after), append(values, bytes.Clone(v))
				}
			}
			done = k == nil
			for i, k := range keys {
				if err := s.moveJob(tx, jobs, k, values[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || done {
			return err
		}
		if moveJobsHook != nil {
			if err := moveJobsHook(); err != nil {
				return err
			}
		}
	}
}

// moveJobsHook, when set (by tests), runs after each chunk moveJobs
// commits; an error stops the move there.
var moveJobsHook func() error

// moveJob moves one key k of bucketJobs, holding v (moveJobs).
func (s *Store) moveJob(tx *bolt.Tx, jobs *bolt.Bucket, k, v []byte) error {
	job := common.Hash(k[:common.HashLength])
	key := s.certKey(tx, job)
	if key == nil {
		// The job's deadline: as stored beside it, or the record's own.
		var ms uint64
		if d := jobs.Get(legacyDeadlineKey(job)); len(d) == 8 {
			ms = binary.BigEndian.Uint64(d)
		} else if len(k) == common.HashLength {
			var rec struct{ Deadline time.Time }
			if json.Unmarshal(v, &rec) == nil && !rec.Deadline.IsZero() {
				ms = uint64(max(rec.Deadline.UnixMilli(), 0))
			}
		}
		if err := s.putDeadline(tx, job, ms); err != nil {
			return err
		}
		key = msKey(ms, job)
	}
	if len(k) == common.HashLength || k[common.HashLength] == 'o' {
		to := key
		if len(k) > common.HashLength {
			to = ownKey(key)
		}
		if live(tx).Get(to) == nil {
			if err := live(tx).Put(to, v); err != nil {
				return err
			}
		} // else one is stored under the new key: it stands
	}
	return jobs.Delete(k)
}
