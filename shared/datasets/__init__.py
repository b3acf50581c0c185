"""Activity datasets (issue 19): Log Analytics queries and this app's own events exported as TSV files
for the console. sources: what to export; querying: the runner Protocol; tsv: the file format; store:
blobs, metadata and the lease lock; refresh: the service behind POST /api/refresh and the timer."""
