package store

import (
	"crypto/ecdsa"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	bolt "go.etcd.io/bbolt"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/sigs"
)

// The store benchmarks time one durable write (a bbolt transaction with its
// fsync) of each kind the node makes on the path of a job: the job record,
// each counted ballot and the certificate. The RunParallel variants show
// how much concurrent writers gain from sharing the file: bbolt has one
// writer at a time, so they queue on its lock and on the fsync.

const benchValidators = 5

// benchFixture is a certificate of 5 arithmetic claims signed by 5
// validators, with its ballots, as a node stores them.
type benchFixture struct {
	cert    *consensus.Certificate
	ballots []*consensus.Ballot
	message []byte
}

func newBenchFixture(b *testing.B) *benchFixture {
	b.Helper()
	keys := make([]*ecdsa.PrivateKey, benchValidators)
	g := &consensus.Genesis{NetworkID: 1337}
	for i := range keys {
		k, err := crypto.ToECDSA(crypto.Keccak256([]byte(fmt.Sprintf("store bench key %d", i))))
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = k
		g.Validators = append(g.Validators, consensus.Validator{Name: fmt.Sprintf("v%d", i), Address: crypto.PubkeyToAddress(k.PublicKey), Stake: 100})
	}
	set, err := g.ValidatorSet()
	if err != nil {
		b.Fatal(err)
	}
	output := "1 + 2 = 3. 4 + 5 = 9. 6 + 7 = 13. 8 + 9 = 17. 10 + 11 = 21."
	cs, err := claims.RuleDecomposer{}.Decompose(b.Context(), output)
	if err != nil || len(cs) != 5 {
		b.Fatalf("decompose: %d claims, %v", len(cs), err)
	}
	params := consensus.JobParams{
		NetworkID:  1337,
		OutputHash: claims.OutputHash([]byte(output)),
		ClaimsRoot: claims.RootOf(cs),
		ClaimCount: uint32(len(cs)),
		Quorum:     consensus.DefaultQuorum,
		Gateway:    g.Validators[0].Address,
		Deadline:   uint64(time.Now().Add(time.Minute).UnixMilli()),
		Nonce:      common.Hash{1},
	}
	tl, err := consensus.NewTally(set, params)
	if err != nil {
		b.Fatal(err)
	}
	f := &benchFixture{}
	for _, k := range keys {
		s := sigs.NewKeySigner(k)
		pos, _, _ := set.Lookup(s.Address())
		mine := tl.Assignment().ByValidator[pos]
		verdicts := make([]claims.Verdict, len(mine))
		for i := range verdicts {
			verdicts[i] = claims.True
		}
		bl, err := consensus.SignBallot(s, 1337, tl.JobID(), params.OutputHash, params.ClaimsRoot, mine, verdicts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tl.AddBallot(bl); err != nil {
			b.Fatal(err)
		}
		f.ballots = append(f.ballots, bl)
	}
	if f.cert, err = tl.Certificate(cs, time.Now()); err != nil {
		b.Fatal(err)
	}
	texts := make([]string, len(cs))
	for i, c := range cs {
		texts[i] = c.Text
	}
	// A stand-in for the signed job message: same fields and sizes.
	f.message, err = json.Marshal(map[string]any{
		"network_id": 1337, "job_id": tl.JobID(), "nonce": params.Nonce, "output_hash": params.OutputHash,
		"claims_root": params.ClaimsRoot, "claims": texts, "quorum": params.Quorum, "replication": 0,
		"deadline": time.Now().UnixMilli(), "gateway": f.ballots[0].Validator, "signature": f.ballots[0].Signature,
	})
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "verity.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// jobID returns a distinct job id for write i.
func jobID(i uint64) common.Hash {
	var h common.Hash
	binary.BigEndian.PutUint64(h[24:], i)
	h[0] = 0xbe
	return h
}

func (f *benchFixture) job(id common.Hash) *Job {
	now := time.Now()
	return &Job{ID: id, Message: f.message, Output: "1 + 2 = 3. 4 + 5 = 9. 6 + 7 = 13. 8 + 9 = 17. 10 + 11 = 21.",
		Gateway: true, Status: consensus.StatusProvisional, SubmittedAt: now, Deadline: now.Add(10 * time.Second)}
}

// writers is the number of goroutines of the parallel variants: a node
// writes from many goroutines at once (gossip handlers, up to 64 judging
// jobs, API requests).
const writers = 32

// benchWrites runs write(i) for distinct i, serially or from writers
// parallel goroutines.
func benchWrites(b *testing.B, parallel bool, write func(i uint64) error) {
	b.ReportAllocs()
	var next atomic.Uint64
	b.ResetTimer()
	if !parallel {
		for range b.N {
			if err := write(next.Add(1)); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := write(next.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkPutJob(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		b.Run(mode(parallel), func(b *testing.B) {
			f := newBenchFixture(b)
			s := openBench(b)
			benchWrites(b, parallel, func(i uint64) error { return s.PutJob(f.job(jobID(i))) })
		})
	}
}

// BenchmarkPutJobQuorum: four stores in one directory, on one disk, as
// the four nodes of a network on one machine (verity bench, verity
// testnet): each commits a job record at the same moment, as each
// validator commits its ballot with the job when the job comes. An op
// lasts until the third commit is durable, the quorum of four; the fourth
// is awaited off the clock. scripts/floor.sh counts it as the ballot's
// durable write when the nodes share a disk.
func BenchmarkPutJobQuorum(b *testing.B) {
	const stores, quorum = 4, 3
	f := newBenchFixture(b)
	dir := b.TempDir()
	ss := make([]*Store, stores)
	for i := range ss {
		s, err := Open(filepath.Join(dir, fmt.Sprintf("node%d.db", i)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		ss[i] = s
	}
	var next uint64
	done := make(chan error, stores)
	b.ResetTimer()
	for range b.N {
		for _, s := range ss {
			next++
			j := f.job(jobID(next))
			go func() { done <- s.PutJob(j) }()
		}
		for i := range stores {
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			if i == quorum-1 {
				b.StopTimer()
			}
		}
		b.StartTimer()
	}
}

func BenchmarkAddBallot(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		b.Run(mode(parallel), func(b *testing.B) {
			f := newBenchFixture(b)
			s := openBench(b)
			now := time.Now()
			benchWrites(b, parallel, func(i uint64) error {
				bl := *f.ballots[i%benchValidators]
				bl.JobID = jobID(i / benchValidators)
				return s.AddBallot(&bl, now)
			})
		})
	}
	// The same write through bbolt's Batch, which commits the transactions
	// of concurrent callers together with one fsync; every caller still
	// returns only after its write is durable.
	b.Run("parallel-batch", func(b *testing.B) {
		f := newBenchFixture(b)
		s := openBench(b)
		now := time.Now()
		benchWrites(b, true, func(i uint64) error {
			bl := *f.ballots[i%benchValidators]
			bl.JobID = jobID(i / benchValidators)
			key := append(bl.JobID.Bytes(), bl.Validator.Bytes()...)
			return s.db.Batch(func(tx *bolt.Tx) error {
				if tx.Bucket(bucketBallots).Get(key) != nil {
					return nil
				}
				return put(tx, bucketBallots, key, &StoredBallot{Ballot: bl, ReceivedAt: now})
			})
		})
	})
}

// BenchmarkPutCertificate stores a certificate over an existing job record
// and marks the job final, as the gateway and every other node do when a
// job ends. The job records are written in one transaction before timing.
func BenchmarkPutCertificate(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		b.Run(mode(parallel), func(b *testing.B) {
			f := newBenchFixture(b)
			s := openBench(b)
			err := s.db.Update(func(tx *bolt.Tx) error {
				for i := range uint64(b.N) {
					id := jobID(i + 1)
					j := f.job(id)
					data, err := encodeJob(j)
					if err != nil {
						return err
					}
					if err := s.putJob(tx, j, data); err != nil { // with its deadline
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			benchWrites(b, parallel, func(i uint64) error {
				c := *f.cert
				c.JobID = jobID(i)
				stored, err := s.PutCertificate(&c, now)
				if err == nil && !stored {
					err = fmt.Errorf("certificate %d not stored", i)
				}
				return err
			})
		})
	}
}

func mode(parallel bool) string {
	if parallel {
		return "parallel"
	}
	return "serial"
}
