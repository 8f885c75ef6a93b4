// Package reports writes the result files of a run from its checkpoint:
// what a person needs after a rollout to see what happened and to fix and
// re-submit the rows that did not go through.
//
// Write (or WriteWith) puts them in DIR/<run-id>/ (DIR is --out, by
// default ./simbulk-runs), owner-only (directory 0700, files 0600), each
// file replaced whole so that an interrupted report never leaves half a
// file: every file is written to a temporary name in that directory and
// all are renamed into place together once all are complete, so a report
// that fails or whose context is cancelled leaves the previous report as
// it was. Writing checks its context every row and between files and
// then returns the context's error. The reports show the checkpoint at one moment (one read
// transaction), so an interrupted or still running run gets consistent
// reports of its rows so far.
//
//	succeeded.csv   the manifest's columns, then result_<key> for every key a
//	                provider returned (result_imsi, result_iccid,
//	                result_msisdn, result_request_id, result_status_url, ...),
//	                provider, attempts, row, finished_at (RFC 3339, UTC)
//	failed.csv      the manifest's columns, then error_code, error_message,
//	                provider, retryable, attempts, row
//	invalid.csv     the manifest's columns, then error_code, error_message,
//	                provider, attempts, row
//	report.xlsx     sheets Summary, Succeeded, Failed, Invalid (the same
//	                tables as the CSV files; a table longer than a sheet
//	                continues on "Succeeded (2)", ..., so no row is left
//	                out); frozen header row, autofilter, every data cell a
//	                text cell. A sheet holds at most 16,384 columns: a
//	                wider table keeps every column simbulk adds and the
//	                manifest's columns from the left as far as they fit;
//	                the rest are only in the CSV files, and summary.json
//	                (workbook_cut), summary.html and the Summary sheet say
//	                so. Sheets of up to 128 columns get a width per column,
//	                wider ones one width for all
//	summary.json    the figures below
//	summary.html    one self-contained page (inline CSS and SVG, no script,
//	                nothing fetched) with the headline figures and charts
//
// The manifest's columns come first, in their order, with their headers
// as written, so failed.csv and invalid.csv can be fixed and fed back as a
// manifest: ingest keeps the added columns as unknown ones. provider is
// added only when the manifest had no provider column (under any alias);
// otherwise the manifest's own column and values stay. An added column
// whose name the manifest already has (a re-submitted failed.csv has
// error_code, attempts, row) is filled in place rather than added twice.
// Result columns carry the result_ prefix because bare keys such as imsi,
// iccid or state are manifest columns and would be read as such.
//
// Every cell that a spreadsheet could evaluate as a formula, that is,
// starting with =, +, -, @, tab or carriage return, is written with a
// leading apostrophe (see Neutralise), in the CSV files and the workbook
// alike. Identifier cells so marked (an MSISDN +447700900123 becomes
// '+447700900123) still re-ingest unchanged: ingest drops one leading
// apostrophe from identifier cells.
//
// No report holds a control character raw: the C0 controls other than
// tab, line feed and carriage return, DEL, the C1 controls (U+0080 to
// U+009F), the noncharacters U+FFFE and U+FFFF, and bytes that are not
// UTF-8 are each replaced with U+FFFD (the replacement character), in
// cells, header names, result values, error codes and messages, drift
// findings and summary text, in every file alike. XML cannot carry most of
// them, so report.xlsx would not open, and a terminal obeys the escape
// sequences. The replacement comes before neutralising: "=\x00..."
// becomes "'=\uFFFD...". The checkpoint keeps the original bytes.
//
// # summary.json, schema version 1
//
// schema_version changes only when a field changes meaning or is removed;
// fields may be added within a version. Times are RFC 3339 in UTC.
//
//	{
//	  "schema_version": 1,
//	  "run_id": "20261124-112356-3f9a2c",
//	  "manifest": "devices.csv",            // as given to simbulk run
//	  "state": "completed",                 // running | interrupted | completed | aborted
//	  "started_at": "2026-11-24T11:23:56.123Z",
//	  "updated_at": "2026-11-24T11:40:02.456Z", // run state last recorded
//	  "finished_at": "2026-11-24T11:40:02.456Z", // null unless completed
//	  "generated_at": "2026-11-24T11:40:03Z",    // when this report was written
//	  "duration_seconds": 966.333,          // started_at to finished_at, or to the
//	                                        // last recorded change if not finished
//	  "rows": 1000,                         // every row of the manifest
//	  "counts": {"pending": 0, "in_flight": 0, "accepted": 0, "succeeded": 990,
//	             "failed": 6, "invalid": 3, "skipped": 1},   // always all seven states
//	  "by_provider": {                      // same shape as counts; rows naming no
//	    "asavie": {"pending": 0, ...},      // provider are under "(none)"
//	    "iotconnect": {...}
//	  },
//	  "top_errors": [                       // failed and invalid rows by error code,
//	    {"code": "bad_checksum", "count": 3, // most frequent first, at most 10
//	     "message": "EID check digits ..."} // one row's message, as an example
//	  ],
//	  "throughput": {
//	    "rows_per_second": 1.031,           // (succeeded + failed) / duration_seconds
//	    "peak_rows_per_minute": 75,
//	    "per_minute": [                     // minutes in which rows reached succeeded
//	      {"minute": "2026-11-24T11:24:00Z", // or failed, in time order; minutes with
//	       "succeeded": 60, "failed": 1}    // none are left out
//	    ],
//	    "fine": {                           // only for runs that finished within
//	      "bucket_seconds": 5,              // minutes: the same in buckets of 1, 2,
//	      "buckets": [{"start": "2026-11-24T11:24:05Z", // 5 or 10 seconds (at most
//	                   "succeeded": 12, "failed": 0}]  // 60 of them)
//	    }
//	  },
//	  "latency_ms": {                       // per provider, over every request sent
//	    "asavie": {"count": 2100,           // (submit, status check, lookup);
//	               "p50": 120, "p95": 480,  // nearest-rank percentiles, exact
//	               "p99": 900, "max": 2400}
//	  },
//	  "drift": {                            // only when a reconciliation's result is
//	    "checked": 1000, "in_sync": 998,    // given (WriteWith, Options.Drift); the
//	    "drift": [{"row": 17, "provider": "asavie", "id": "(+44)7700900123",
//	               "kind": "state", "expected": "active", "actual": "suspended"}]
//	  },                                    // shape of `simbulk reconcile --json`
//	  "workbook_cut": {                     // only when report.xlsx leaves columns
//	    "columns_left_out": 3621,           // out: of the data sheet that lacks most
//	    "sheet_columns": 16384,             // the most columns a sheet holds
//	    "note": "report.xlsx leaves out ..." // the same for people; the CSV
//	  },                                    // files have every column
//	  "counters": {                         // only when something was counted:
//	    "callback_rejected_bad_path": 28    // events around the run, summed over
//	  }                                     // every process that worked on it
//	}
//
// # summary.html
//
// The page shows the headline figures, each in an element with
// data-metric (rows, succeeded, failed, invalid, skipped, unfinished,
// duration_seconds, rows_per_second) and data-value holding the raw number,
// and four charts, each an <svg id="chart-NAME" data-chart="NAME">:
// outcomes (stacked bar per provider), throughput (rows finished per
// minute, or per wider bucket for long runs), latency (p50/p95/p99 per
// provider) and errors (top error codes). When report.xlsx leaves columns
// out, <p id="workbook-cut" data-metric="workbook_columns_left_out"
// data-value> says so under the title. Every bar is a
// <rect class="bar" data-series data-label data-value>. A reconciliation,
// when given, adds <section id="drift">.
package reports
