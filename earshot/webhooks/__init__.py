"""What the channels' webhook processes share (WhatsApp, Messenger and Instagram, X): the
spool-before-200 app and processor (graph), the process's command line (main), its wiring
(app) and its run loop (serve)."""
