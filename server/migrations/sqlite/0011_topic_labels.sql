-- A topic's label for the person ("Replies from Bill"), rendered by the page
-- from the prompt that added it (`topicLabel`) and shown by the preference
-- centre. NULL: none was sent (the centre shows the topic's name).
ALTER TABLE subscription_topics ADD COLUMN label TEXT;
