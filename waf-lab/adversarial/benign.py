#!/usr/bin/env python3
"""Writes benign-text-s11.jsonl: UI strings, search queries, product text in
many languages, escaped text and template text of the shapes the session 11
false positives had (a parenthetical that starts with an SQL word, a quoted
answer after `?`, backslash-escaped apostrophes, `$$`, `${…}`)."""
import json, sys

VALUES = r"""Upload a photo or (select one from your library)
Do you prefer 'tea' or coffee? 'Tea'
Do you prefer 'tea' or coffee? 'Tea' is my pick
Choose a file or (select one from gallery)
Pick a size or (select from the chart below)
Enter your email or (update it later in settings)
Sign in with Google or (create an account)
Price: $5 or (order 2 for $8)
Drag files here or (select files) to upload
Add to cart or (select another colour)
Use the 'Save' button or (press Ctrl+S)
He said 'yes' or 'no'? 'Maybe'
Is it 'red' or 'blue'? 'Red'
Type 'help' or (select an option)
Rock 'n' roll or jazz? 'Jazz' of course
Don't forget: order by Friday or (call us)
Pay now or (select a payment plan)
Ship to this address or (select a saved address)
Continue as guest or (select an existing account)
Record a video or (select one from your camera roll)
Write a message or (select a template)
Use current location or (select on the map)
Choose a plan and (select the add-ons you need)
Set a reminder or (delete it from the list)
Keep the old card or (update payment details)
Save as draft or (drop it entirely)
Apply coupon or (select from your vouchers)
sql select from where tutorial
how to use select from in mysql
mysql order by date desc limit 10
python 'or' operator
what does 1=1 mean in sql
drop table meaning
delete from table where id
java "a".concat("b") example
string concat in el ${} expression
{{ name }} jinja tutorial
difference between 'and' and 'or'? 'and' binds tighter
It\'s a great book
Dave\'s shop
O\'Brien
He said \"hi\"
{\"a\":\"b\",\"c\":[1,2]}
C:\Users\O'Neil\Documents
\'quoted\' text
Don\'t stop me now (select your favourite)
I\'m here or there
Save $$ today
Price $5 or $10
$$$ deals this week
solve $$x=1$$ or $$x=2$$
$$a^2 + b^2 = c^2$$
Hello ${name}, your order #{order.id} is ready
${firstName} ${lastName}
{{ product.title | upcase }}
{{ 'Hello' | append: ' world' }}
Total: ${price.toFixed(2)}
Hi {{ user.first_name }}!
Téléchargez une photo ou (sélectionnez-en une dans votre bibliothèque)
l'or ou l'argent ? 'L'or'
¿Prefieres 'té' o café? 'Té'
Sube una foto o (selecciona una de tu galería)
Foto hochladen oder (aus der Bibliothek auswählen)
Carica una foto o (selezionane una dalla libreria)
Envie uma foto ou (selecione uma da galeria)
Kies 'thee' of koffie? 'Thee'
Prześlij zdjęcie lub (wybierz z biblioteki)
Fotoğraf yükle veya (kütüphaneden seç)
写真をアップロード（またはライブラリから選択）
上传照片或（从图库中选择）
Загрузите фото или (выберите из библиотеки)
Order by phone or (select delivery)
Union Jack or 'Union' flag? 'Union Jack'
Where's the 'from' field? 'From' is required
Select all that apply (or none)
Who wins: 'cats' or 'dogs'? 'Cats'!
Q: 'yes' or 'no'? A: 'yes'
Is 5 > 3 or (select a number)
Either 'A' or 'B'? 'B' (final answer)
N'Djamena or (select another city)
X'ian or Xi'an?
E'tienne's café
Let's go (or not)
Maybe 'later' or (never)
[Select] a category or (update filters)
Call us or (email support@shop.example)
order by price (low to high)
Sort: (select) newest first
"""
VALUES = [v for v in VALUES.split("\n") if v]

def main(out):
    with open(out, "w") as f:
        for v in VALUES:
            f.write(json.dumps({"source": "benign-text-s11", "label": "benign",
                                "attack_type": None, "value": v}) + "\n")

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benign-text-s11.jsonl")
