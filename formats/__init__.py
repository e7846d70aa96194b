"""File formats: documents (plain text, HTML, subtitles, gettext catalogs, office files) read into
texts to translate and rendered back, the line formats of batch translation, and the offline
translation of whole line files in bounded memory. May import the model (its sentence splitter and
translator interface); never the service, training or the command line."""
