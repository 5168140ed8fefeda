"""The similar-tile index: its files (:mod:`.store`), building and extending it (:mod:`.build`),
searching it (:mod:`.search`) and the result sets searches return (:mod:`.results`)."""
