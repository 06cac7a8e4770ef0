package node

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verity-network/verity/consensus"
)

// metrics are the node's Prometheus metrics, in a registry of its own so
// that several nodes can run in one process.
type metrics struct {
	reg *prometheus.Registry

	timeToQuorum      prometheus.Histogram
	timeToCertificate prometheus.Histogram
	jobs              *prometheus.CounterVec
	jobsPending       prometheus.Gauge
	ballots           *prometheus.CounterVec
	validation        *prometheus.HistogramVec
	storeWrite        *prometheus.HistogramVec
	announcements     *prometheus.CounterVec
	reannouncements   prometheus.Counter
	ballotsSent       *prometheus.CounterVec
	catchUp           *prometheus.CounterVec
}

var latencyBuckets = []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		timeToQuorum: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "verity_time_to_quorum_seconds", Help: "Time from accepting a job to every claim being decided or undecidable (gateway).",
			Buckets: latencyBuckets,
		}),
		timeToCertificate: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "verity_time_to_certificate_seconds", Help: "Time from accepting a job to storing its certificate (gateway).",
			Buckets: latencyBuckets,
		}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_jobs_total", Help: "Jobs this node was gateway of, by final status.",
		}, []string{"status"}),
		jobsPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "verity_jobs_provisional", Help: "Jobs this node is gateway of that are still provisional.",
		}),
		ballots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_ballots_total", Help: "Ballots checked by this node (gossiped, or sent straight to it as gateway), by result and reason.",
		}, []string{"result", "reason"}),
		validation: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "verity_gossip_validation_seconds", Help: "Time the topic validator took per message.",
			Buckets: []float64{.00001, .00005, .0001, .0002, .0005, .001, .002, .005, .01, .05},
		}, []string{"topic", "result"}),
		storeWrite: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "verity_store_write_seconds", Help: "Time of one durable store write.",
			Buckets: []float64{.00005, .0001, .0002, .0005, .001, .002, .005, .01, .02, .05, .1},
		}, []string{"op"}),
		announcements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_job_announcements_total", Help: "Job announcements checked by this node, by result: accepted, stale (a resend number already taken; no answer), expired, rejected.",
		}, []string{"result"}),
		reannouncements: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_job_reannouncements_total", Help: "Re-announcements of its pending jobs this node published as gateway, each with a new resend number.",
		}),
		ballotsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_ballots_sent_total", Help: "Ballots this validator sent, by how: direct (straight to the job's gateway, another node) or gossip (on the ballots topic).",
		}, []string{"via"}),
		catchUp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_catchup_certificates_total", Help: "Certificates received by catch-up, by result: stored, ignored (held already, or not yet taken), invalid (the peer is penalised).",
		}, []string{"result"}),
	}
	m.reg.MustRegister(m.timeToQuorum, m.timeToCertificate, m.jobs, m.jobsPending, m.ballots, m.validation, m.storeWrite,
		m.announcements, m.reannouncements, m.ballotsSent, m.catchUp,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observeStore(op string, start time.Time) {
	m.storeWrite.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func (m *metrics) observeValidation(topic, result string, start time.Time) {
	m.validation.WithLabelValues(topic, result).Observe(time.Since(start).Seconds())
}

// reason names the class of a validation error for the ballots metric.
func reason(err error) string {
	switch {
	case errors.Is(err, ErrMessageTooLarge):
		return "too_large"
	case errors.Is(err, ErrDecode):
		return "undecodable"
	case errors.Is(err, consensus.ErrWrongNetwork):
		return "wrong_network"
	case errors.Is(err, consensus.ErrUnknownValidator):
		return "unknown_validator"
	case errors.Is(err, consensus.ErrBadSignature):
		return "bad_signature"
	case errors.Is(err, consensus.ErrEquivocation):
		return "equivocation"
	case errors.Is(err, consensus.ErrWrongJob), errors.Is(err, consensus.ErrNotAssigned), errors.Is(err, consensus.ErrBallotShape):
		return "shape"
	}
	return "other"
}

func verdictLabel(err error) string {
	if err != nil {
		return "reject"
	}
	return "accept"
}
