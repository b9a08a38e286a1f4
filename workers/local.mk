# workers/: background threads of the recorder.
